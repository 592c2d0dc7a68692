import type { VirtualService } from '../vip/lb-table.js';
import { renderLbTable } from '../vip/nft/render.js';
import { tracePacket, type TracePacket, type TraceResult } from '../vip/nft/packet-tracer.js';
import { countersText, hop, type Hop, type Problem } from './explanation.js';
import type { ChosenBackend } from './backend-hops.js';
import type { ConntrackCount, LbTableView } from './kernel-view.js';
import { ipvsChoice } from './ipvs-choice.js';

/** The balancer's hop and what it chose: the traced candidates with their shares, and draining backends. */
export interface LbOutcome {
  hop: Hop;
  service: VirtualService | null;
  chosen: ChosenBackend[];
}

/** Where the balancer runs and what it is asked. */
export interface LbQuestion {
  kind: 'sbox-lb' | 'task-lb';
  node: string;
  namespace: string;
  /** The namespace's meshnet table as read back; null when it has none. */
  lb: LbTableView | null;
  /** Finds the service the packet is for in the table. */
  match: (svc: VirtualService) => boolean;
  packet: TracePacket;
  /** What to say when the table has no entry for the packet. */
  missing: { message: string; fix: string };
  /** Connections conntrack holds, to show per backend. */
  conntrack?: readonly ConntrackCount[];
  /** Names backends by address (task and node), for people. */
  label: (address: string) => string;
  /** How to fix a service without a selectable backend. */
  noBackendFix: string;
  /** The entry must rewrite the source (a policy=cluster published port): without it replies bypass the balancer. */
  expectSourceNat?: boolean;
}

/**
 * The load-balancing entry for a packet, traced with the VIP layer's packet tracer over the
 * service's own entry as the kernel holds it (read back): the mark, the scheduler, every backend
 * with its weight and share of new connections, the SNAT, and the verdict.
 */
export function lbHop(q: LbQuestion): LbOutcome {
  const problems: Problem[] = [];
  const details: string[] = [];
  const at = (message: string, fix: string, severity: Problem['severity'] = 'stop') => problems.push({ severity, node: q.node, namespace: q.namespace, message, fix });
  const done = (title: string, service: VirtualService | null, chosen: ChosenBackend[]): LbOutcome => ({ hop: hop({ kind: q.kind, node: q.node, namespace: q.namespace, title, details, problems }), service, chosen });
  if (!q.lb) {
    at(`${q.namespace} on ${q.node} has no load-balancing table (no meshnet nftables table, no IPVS service)`, `the agent on ${q.node} writes it on its next pass; check it runs (meshnet node ls) and read its log`);
    return done('no load-balancing table', null, []);
  }
  if (q.lb.backend === 'ipvs') return ipvsHop(q, q.lb);
  if (!q.lb.skeletonComplete) at(`the meshnet table in ${q.namespace} on ${q.node} lacks part of its skeleton (maps or chains)`, `the agent on ${q.node} rebuilds it on its next full pass`, 'warn');
  const svc = q.lb.table.services.find(q.match) ?? null;
  if (!svc) {
    at(q.missing.message, q.missing.fix);
    return done('no load-balancing entry', null, []);
  }
  let trace: TraceResult;
  try {
    trace = tracePacket(renderLbTable({ services: [svc] }), q.packet);
  } catch (err) {
    at(`the entry for ${svc.id} cannot be traced: ${(err as Error).message}`, `report it with the output of nft list table ip meshnet in ${q.namespace}`, 'warn');
    return done(`entry ${svc.id} (not traced)`, svc, svc.backends.filter((b) => b.weight > 0).map((b) => ({ ...b, share: 0 })));
  }
  const f = svc.frontend;
  const mark = trace.mark || (f.kind === 'fwmark' ? f.mark : 0);
  details.push(
    `${f.kind === 'fwmark' ? `mark 0x${mark.toString(16)} (${mark}) -> ` : ''}entry ${svc.id}: scheduler ${svc.scheduler}${svc.persistenceSeconds !== undefined ? `, affinity ${svc.persistenceSeconds}s` : ''}${trace.snat ? `, SNAT to ${trace.snat}` : ''}${trace.serviceChain ? `, chain ${trace.serviceChain}` : ''}`,
  );
  const chosen: ChosenBackend[] = [];
  for (const b of svc.backends) {
    const port = b.port || (f.kind === 'vip' && f.port === 0 ? q.packet.dport : f.port);
    const share = trace.candidates.filter((c) => c.address === b.address).reduce((a, c) => a + c.share, 0);
    const ct = (q.conntrack ?? []).filter((c) => c.backend === b.address);
    const conns = ct.reduce((a, c) => a + c.connections, 0);
    const counted = ct.some((c) => c.packets !== undefined) ? `, ${countersText({ packets: ct.reduce((a, c) => a + (c.packets ?? 0), 0), bytes: ct.reduce((a, c) => a + (c.bytes ?? 0), 0) })}` : '';
    details.push(`backend ${b.address}:${port} weight ${b.weight} -> ${Math.round(share * 1000) / 10}% of new connections, ${conns} tracked connection${conns === 1 ? '' : 's'}${counted}  (${q.label(b.address)})`);
    if (b.weight === 0) {
      at(`backend ${b.address} (${q.label(b.address)}) has weight 0: it gets no new connections (it is draining, or was set so by hand)`, `nothing to do while it drains: it leaves the table after the agent's --drain-seconds; if it should serve, check meshnet task ls and the agent's log`, 'warn');
    }
    chosen.push({ address: b.address, port, weight: b.weight, share });
  }
  if (trace.verdict === 'reject') {
    at(
      `${svc.id} has no backend with a weight above 0: a new connection is refused (${trace.rejectWith ?? 'rejected'})`,
      q.noBackendFix,
    );
  }
  if (q.expectSourceNat && !svc.sourceNat) at(missingSnat(q, svc), `the agent on ${q.node} writes it on its next pass; check it runs (meshnet node ls) and read its log`);
  if (trace.unmapped > 0) at(`${Math.round(trace.unmapped * 100)}% of the slots of ${svc.id} map to no backend`, `the agent on ${q.node} rewrites the entry on its next full pass`, 'warn');
  const title = `${svc.id}: ${svc.backends.filter((b) => b.weight > 0).length} of ${svc.backends.length} backends selectable, scheduler ${svc.scheduler}`;
  return done(title, svc, chosen);
}

/** Why a published port without its SNAT fails, for both backends. */
function missingSnat(q: Pick<LbQuestion, 'node' | 'namespace'>, svc: VirtualService): string {
  return `${svc.id} in ${q.namespace} on ${q.node} does not rewrite the source: a backend answers the client directly instead of through ${q.namespace}, and the connection fails`;
}

/**
 * The same hop on an IPVS node: the IPVS service the packet reaches (through its MARK rule for a firewall-mark
 * service), its scheduler and SNAT, each destination with its weight, share and the connections IPVS counts.
 */
function ipvsHop(q: LbQuestion, view: LbTableView): LbOutcome {
  const problems: Problem[] = [];
  const details: string[] = [];
  const at = (message: string, fix: string, severity: Problem['severity'] = 'stop') => problems.push({ severity, node: q.node, namespace: q.namespace, message, fix });
  const done = (title: string, service: VirtualService | null, chosen: ChosenBackend[]): LbOutcome => ({ hop: hop({ kind: q.kind, node: q.node, namespace: q.namespace, title, details, problems }), service, chosen });
  const agentFix = `the agent on ${q.node} writes it on its next pass; check it runs (meshnet node ls) and read its log`;
  if (!view.skeletonComplete) at(`an IPVS firewall-mark service in ${q.namespace} on ${q.node} has no MARK rule in mangle MESHNET-IPVS-MARK, or PREROUTING does not jump there: its packets are never marked`, agentFix, 'warn');
  const svc = view.table.services.find(q.match) ?? null;
  if (!svc) {
    at(q.missing.message, q.missing.fix);
    return done('no load-balancing entry (IPVS)', null, []);
  }
  const f = svc.frontend;
  const choice = ipvsChoice(svc);
  details.push(`IPVS ${choice.service} -> entry ${svc.id}: scheduler ${svc.scheduler}${svc.persistenceSeconds !== undefined ? `, persistent ${svc.persistenceSeconds}s` : ''}${svc.sourceNat ? `, SNAT to ${svc.sourceNat} (nat MESHNET-IPVS-SNAT)` : ''}`);
  const chosen: ChosenBackend[] = [];
  for (const b of svc.backends) {
    const port = b.port || (f.kind === 'vip' && f.port === 0 ? q.packet.dport : f.port);
    const share = choice.candidates.find((c) => c.address === b.address)?.share ?? 0;
    const conns = (view.connections ?? []).filter((c) => c.service === svc.id && c.address === b.address && c.port === b.port);
    const active = conns.reduce((a, c) => a + c.active, 0);
    const inactive = conns.reduce((a, c) => a + c.inactive, 0);
    details.push(`backend ${b.address}:${port} weight ${b.weight} -> ${Math.round(share * 1000) / 10}% of new connections, ${active} active / ${inactive} inactive (IPVS)  (${q.label(b.address)})`);
    if (b.weight === 0) {
      at(`backend ${b.address} (${q.label(b.address)}) has weight 0: it gets no new connections (it is draining, or was set so by hand)`, `nothing to do while it drains: it leaves the table after the agent's --drain-seconds; if it should serve, check meshnet task ls and the agent's log`, 'warn');
    }
    chosen.push({ address: b.address, port, weight: b.weight, share });
  }
  if (choice.candidates.length === 0) at(`${svc.id} has no backend with a weight above 0: IPVS balances no new connection (it is refused or lost)`, q.noBackendFix);
  if (q.expectSourceNat && !svc.sourceNat) at(missingSnat(q, svc), agentFix);
  return done(`${svc.id}: ${choice.candidates.length} of ${svc.backends.length} backends selectable, IPVS scheduler ${svc.scheduler}`, svc, chosen);
}
