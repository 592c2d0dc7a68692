/**
 * Pure: a namespace's IPVS services, with the mark and SNAT rules iptables-save printed, as the table view explain
 * judges (the same LbTable the nftables read-back gives), plus what IPVS counts per destination. Read on IPVS nodes,
 * where a namespace has no meshnet nftables table.
 */
import type { IptablesState } from '../mesh/iptables-save-parse.js';
import type { IpvsServiceKey, IpvsDestStatus, IpvsService } from '../vip/ipvs/codec.js';
import { lbTableFromIpvs } from '../vip/ipvs/ipvs-read-back.js';
import { MARK_CHAIN, MARK_COMMENT, markRulesFromState, type MarkRule } from '../vip/ipvs/mark-rules.js';
import { snatSourcesFromState } from '../vip/ipvs/snat-rules.js';
import type { IpvsConnectionCount, LbTableView } from './kernel-view.js';

/** What was read in the namespace: IPVS as dumped, and iptables-save of mangle (v4, v6 when read) and nat. */
export interface IpvsKernelRead {
  services: { service: IpvsService; dests: IpvsDestStatus[] }[];
  mangle: IptablesState;
  mangle6?: IptablesState;
  nat?: IptablesState;
}

const hooked = (state: IptablesState | undefined): boolean =>
  (state?.get('mangle')?.get('PREROUTING') ?? []).some((r) => r.includes(MARK_COMMENT) && r.includes(`-j ${MARK_CHAIN}`));

/** The view of what was read; null when IPVS holds no service (the namespace has no table). */
export function ipvsTableView(read: IpvsKernelRead): LbTableView | null {
  if (read.services.length === 0) return null;
  const marks = new Map<string, MarkRule>();
  for (const r of markRulesFromState(read.mangle)) marks.set(`inet/${r.mark}`, r);
  for (const r of read.mangle6 ? markRulesFromState(read.mangle6) : []) marks.set(`inet6/${r.mark}`, r);
  const state = { services: read.services.map(({ service, dests }) => ({ service, dests: dests.map(({ activeConns: _a, inactiveConns: _i, persistConns: _p, ...d }) => d) })) };
  const table = lbTableFromIpvs({ state, marks, snat: read.nat ? snatSourcesFromState(read.nat) : new Map() });
  // A firewall-mark service is fed only through its MARK rule, which PREROUTING must reach.
  const fed = (k: IpvsServiceKey): boolean => k.kind !== 'fwmark' || (marks.has(`${k.family}/${k.fwmark}`) && hooked(k.family === 'inet6' ? read.mangle6 : read.mangle));
  const connections: IpvsConnectionCount[] = read.services.flatMap(({ dests }, i) =>
    dests.map((d) => ({ service: table.services[i]!.id, address: d.address, port: d.port, active: d.activeConns, inactive: d.inactiveConns })),
  );
  return { table, skeletonComplete: read.services.every(({ service }) => fed(service.key)), backend: 'ipvs', connections };
}
