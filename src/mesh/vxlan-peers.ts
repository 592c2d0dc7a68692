import { VXLAN_PORT } from '../overlay/overlay-spec.js';
import { ipv4ToInt } from '../sandbox/addresses.js';
import { commentMatch, portMatch } from './iptables-match.js';
import type { IptablesRuleSet } from './iptables-ruleset.js';

/** Marks the VXLAN filter's rule in the host's INPUT chain. */
export const VXLAN_COMMENT = 'meshnet-vxlan';
/** filter chain, jumped from INPUT for UDP to the VXLAN port: the peers' underlay addresses, then DROP. */
export const VXLAN_CHAIN = 'MESHNET-VXLAN';

const OWNED: IptablesRuleSet['ownedChains'] = [{ table: 'filter', name: VXLAN_CHAIN }];

/**
 * VXLAN only from known peers. The vxlan0 devices are created in the host namespace, so their
 * UDP socket is there: a datagram from any address that reaches it is decapsulated into an
 * overlay bridge. This admits the underlay addresses of the live peers and drops the rest.
 * A peer's datagram RETURNs rather than being accepted, so the host's own INPUT policy still
 * applies to it: meshnet only takes away. `peers` null (no overlay on this node) adds nothing.
 */
export function vxlanPeerRuleSet(peers: readonly string[] | null, port: number = VXLAN_PORT): IptablesRuleSet {
  if (peers === null) return emptyVxlanPeerRuleSet();
  // Numeric order: the chain reads naturally and does not change with the order peers arrive in.
  const sorted = [...new Set(peers)].sort((a, b) => ipv4ToInt(a) - ipv4ToInt(b));
  return {
    comment: VXLAN_COMMENT,
    ownedChains: OWNED,
    chains: [{ table: 'filter', name: VXLAN_CHAIN, rules: [...sorted.map((p) => `-s ${p}/32 -j RETURN`), '-j DROP'] }],
    builtins: [{ table: 'filter', chain: 'INPUT', rule: `${portMatch('udp', 'dport', port)} ${commentMatch(VXLAN_COMMENT)} -j ${VXLAN_CHAIN}` }],
  };
}

/** The VXLAN filter with nothing in it: applying it removes the filter. */
export function emptyVxlanPeerRuleSet(): IptablesRuleSet {
  return { comment: VXLAN_COMMENT, ownedChains: OWNED, chains: [], builtins: [] };
}

