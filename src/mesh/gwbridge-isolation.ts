import { commentMatch } from './iptables-match.js';
import type { IptablesRuleSet, SysctlSetting } from './iptables-ruleset.js';

/** Marks the isolation's rules in the host's built-in chains. */
export const ISOLATION_COMMENT = 'meshnet-isolation';
/** filter chain, jumped from FORWARD: what may cross the gwbridge (Docker: DOCKER-ISOLATION-STAGE-1). */
export const ISOLATION_CHAIN = 'MESHNET-ISOLATION';
/** mangle chain, jumped from PREROUTING for packets entering from the gwbridge: one source address per leg. */
export const ANTISPOOF_CHAIN = 'MESHNET-ANTISPOOF';

const OWNED: IptablesRuleSet['ownedChains'] = [
  { table: 'filter', name: ISOLATION_CHAIN },
  { table: 'mangle', name: ANTISPOOF_CHAIN },
];

/** One sandbox's veth on the gwbridge: its host-side name and the one address it may send from. */
export interface GwbridgeLeg {
  hostIf: string;
  address: string;
}

export interface GwbridgeIsolationInput {
  /** The host bridge's name (meshnet_gwbr). */
  bridge: string;
  /** Every leg on the bridge: the ingress sandbox's and each task's. */
  legs: readonly GwbridgeLeg[];
}

/**
 * Docker-style isolation of the gwbridge (`enable_icc=false` on docker_gwbridge), as the
 * host's FORWARD sees it:
 * - into the bridge: replies and DNATed connections only (published ports, to the ingress
 *   sandbox or to a mode=host task: the host's nat chains decide which); a LAN neighbour
 *   routing to the bridge subnet is dropped;
 * - leg to leg (tasks of different networks on one host, bridged or routed back out the
 *   bridge): dropped, unless DNATed (a task may use a published port like any client);
 * - out of the bridge (task egress, masqueraded): accepted, as Docker does for its bridges.
 * Every decision about gwbridge traffic is final here, so the outcome does not depend on the
 * order of this jump and other FORWARD rules. Leg-to-leg frames reach FORWARD only through
 * br_netfilter: see gwbridgeIsolationSysctls.
 *
 * Anti-spoofing (mangle PREROUTING, before any NAT): a packet entering from a leg whose
 * source is not that leg's address is dropped.
 */
export function gwbridgeIsolationRuleSet(input: GwbridgeIsolationInput): IptablesRuleSet {
  const gw = input.bridge;
  const c = commentMatch(ISOLATION_COMMENT);
  const legs = [...input.legs].sort((a, b) => a.hostIf.localeCompare(b.hostIf));
  const rs: IptablesRuleSet = {
    comment: ISOLATION_COMMENT,
    ownedChains: OWNED,
    chains: [
      {
        table: 'filter',
        name: ISOLATION_CHAIN,
        rules: [
          `-o ${gw} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`,
          `-i ${gw} -o ${gw} -j DROP`,
          `-i ${gw} -j ACCEPT`,
          `-o ${gw} -j DROP`,
        ],
      },
    ],
    builtins: [{ table: 'filter', chain: 'FORWARD', rule: `${c} -j ${ISOLATION_CHAIN}` }],
  };
  if (legs.length > 0) {
    rs.chains.push({
      table: 'mangle',
      name: ANTISPOOF_CHAIN,
      rules: legs.map((l) => `! -s ${l.address}/32 -m physdev --physdev-in ${l.hostIf} -j DROP`),
    });
    rs.builtins.push({ table: 'mangle', chain: 'PREROUTING', rule: `-i ${gw} ${c} -j ${ANTISPOOF_CHAIN}` });
  }
  return rs;
}

/** The isolation's rule set with nothing in it: applying it removes the isolation (the gwbridge is gone). */
export function emptyGwbridgeIsolationRuleSet(): IptablesRuleSet {
  return { comment: ISOLATION_COMMENT, ownedChains: OWNED, chains: [], builtins: [] };
}

/**
 * What the host needs for frames bridged between two legs to pass iptables at all (Docker
 * sets the same): without it, leg-to-leg traffic and the anti-spoofing rules are never seen
 * by netfilter. Where br_netfilter is a module, it must be loaded first (`modprobe
 * br_netfilter`). A per-bridge alternative that leaves other bridges alone is the bridge
 * option nf_call_iptables=1 (IFLA_BR_NF_CALL_IPTABLES) on the gwbridge.
 */
export function gwbridgeIsolationSysctls(): SysctlSetting[] {
  return [{ key: 'net.bridge.bridge-nf-call-iptables', value: '1' }];
}
