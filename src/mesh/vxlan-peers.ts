import { VXLAN_PORT } from '../overlay/overlay-spec.js';
import { ipv4ToInt } from '../sandbox/addresses.js';
import { ipv6ToBuffer } from '../sandbox/addresses6.js';
import { commentMatch, portMatch } from './iptables-match.js';
import type { IptablesRuleSet } from './iptables-ruleset.js';

/** Marks the VXLAN filter's rule in the host's INPUT chain. */
export const VXLAN_COMMENT = 'meshnet-vxlan';
/** filter chain, jumped from INPUT for UDP to the VXLAN port: the peers' underlay addresses, then DROP. */
export const VXLAN_CHAIN = 'MESHNET-VXLAN';
/** The same filter in ip6tables, for a v6 underlay: an owner of its own, so the reconciler tells the two apart. */
export const VXLAN6_COMMENT = 'meshnet-vxlan6';

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


/**
 * VXLAN from known peers only, over a v6 underlay (ip6tables; the same chain as the v4 filter): the
 * kernel opens a v6 VXLAN device's socket on IPv6, which the v4 filter never sees. `peers` null adds nothing.
 */
export function vxlanPeerRuleSet6(peers: readonly string[] | null, port: number = VXLAN_PORT): IptablesRuleSet {
  if (peers === null) return emptyVxlanPeerRuleSet6();
  const sorted = [...new Set(peers)].sort((a, b) => Buffer.compare(ipv6ToBuffer(a), ipv6ToBuffer(b)));
  return {
    ...emptyVxlanPeerRuleSet6(),
    chains: [{ table: 'filter', name: VXLAN_CHAIN, rules: [...sorted.map((p) => `-s ${p}/128 -j RETURN`), '-j DROP'] }],
    builtins: [{ table: 'filter', chain: 'INPUT', rule: `${portMatch('udp', 'dport', port)} ${commentMatch(VXLAN6_COMMENT)} -j ${VXLAN_CHAIN}` }],
  };
}

/** The v6 VXLAN filter with nothing in it: applying it removes the filter. */
export function emptyVxlanPeerRuleSet6(): IptablesRuleSet {
  return { comment: VXLAN6_COMMENT, family: 'ipv6', ownedChains: OWNED, chains: [], builtins: [] };
}
