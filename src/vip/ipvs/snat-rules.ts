/**
 * The nat-table rules that rewrite the source of connections IPVS balanced for services with `sourceNat` (the
 * ingress sandbox's published ports, as Docker's `POSTROUTING -m ipvs --ipvs -j SNAT --to-source <sbox ingress ip>`):
 * IPVS in masq mode rewrites only the destination, so without them a backend on another host answers the client
 * directly and the connection fails. Written as a rule set for the namespace's one IptablesWriter, beside the marks,
 * and parsed back from what the writer reads.
 */
import type { IptablesRuleSet } from '../../mesh/iptables-ruleset.js';
import type { IptablesState } from '../../mesh/iptables-save-parse.js';
import type { L4Protocol, LbTable } from '../lb-table.js';
import { EVERY_PORT_MARK_BASE } from './every-port-marks.js';
import type { IpvsState } from './ipvs-plan.js';

export const SNAT_CHAIN = 'MESHNET-IPVS-SNAT';
/** Marks the jump from POSTROUTING, so the writer finds and prunes only its own. */
export const SNAT_COMMENT = 'meshnet-ipvs-snat';
const COMMENT_PREFIX = 'meshnet:';

/** One SNAT rule: connections of service `id` leave with source `toSource`. */
export type SnatRule =
  /** An fwmark service: its packets still carry the mark in POSTROUTING. */
  | { id: string; toSource: string; mark: number }
  /** A VIP service: IPVS rewrote the destination, conntrack keeps the original one (net.ipv4.vs.conntrack=1). */
  | { id: string; toSource: string; address: string; protocol: L4Protocol; port: number };

/** The SNAT rules a table needs, in table order (v4 services only: v6 published ports stay in `ip6 meshnet6`). */
export function snatRulesFromTable(table: LbTable): SnatRule[] {
  const out: SnatRule[] = [];
  for (const vs of table.services) {
    if (vs.sourceNat === undefined) continue;
    const fe = vs.frontend;
    if (fe.kind === 'fwmark') out.push({ id: vs.id, toSource: vs.sourceNat, mark: fe.mark });
    else out.push({ id: vs.id, toSource: vs.sourceNat, address: fe.address, protocol: fe.protocol, port: fe.port });
  }
  return out;
}

// Written exactly as iptables-save prints it (both backends drop the /32 of --ctorigdst), so read-back compares equal.
function ruleText(r: SnatRule): string {
  const match = 'mark' in r ? `-m mark --mark 0x${r.mark.toString(16)}` : `-p ${r.protocol} -m conntrack --ctorigdst ${r.address} --ctorigdstport ${r.port}`;
  return `${match} -m comment --comment "${COMMENT_PREFIX}${r.id}" -j SNAT --to-source ${r.toSource}`;
}

/** The SNAT chain holding exactly `rules`, hooked into POSTROUTING; with no rules, no chain and no hook. */
export function snatRuleSet(rules: readonly SnatRule[]): IptablesRuleSet {
  return {
    comment: SNAT_COMMENT,
    ownedChains: [{ table: 'nat', name: SNAT_CHAIN }],
    chains: rules.length > 0 ? [{ table: 'nat', name: SNAT_CHAIN, rules: rules.map(ruleText) }] : [],
    builtins: rules.length > 0 ? [{ table: 'nat', chain: 'POSTROUTING', rule: `-m comment --comment ${SNAT_COMMENT} -j ${SNAT_CHAIN}` }] : [],
  };
}

/** The source each service id is rewritten to, from what the writer read of the nat table (others' rules skipped). */
export function snatSourcesFromState(state: IptablesState): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of state.get('nat')?.get(SNAT_CHAIN) ?? []) {
    const m = /--comment "?meshnet:([a-z0-9_-]+)"? .*-j SNAT --to-source (\S+)/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/**
 * Whether a namespace whose IPVS holds `state` may hold SNAT rules of an earlier agent: only services other than
 * every-port VIPs (published ports, port-specific VIPs) ever get one, so task namespaces with every-port VIPs alone
 * never read their nat table for it. Rules go in after their services and leave before them.
 */
export function mayHoldSnat(state: IpvsState): boolean {
  return state.services.some(({ service: { key } }) => key.family === 'inet' && !(key.kind === 'fwmark' && key.fwmark >= EVERY_PORT_MARK_BASE));
}
