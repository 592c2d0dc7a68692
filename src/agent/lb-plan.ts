import type { ClusterSnapshot } from '../model/cluster.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import type { ServiceRecord, TaskRecord } from '../model/records.js';
import type { LbTable, VirtualService } from '../vip/lb-table.js';
import { ipv6Frontends } from './lb-plan-v6.js';
import { vipFrontends } from './vip-frontends.js';

/** Weight of a task in every table right now: 1 running, 0 draining before its deadline, null: not listed. */
export function taskWeight(task: TaskRecord, liveNode: boolean, drainSeconds: number, now: number): number | null {
  if (!liveNode) return null;
  if (task.desiredState === 'shutdown') return now < Date.parse(task.updatedAt) + drainSeconds * 1000 ? 0 : null;
  return task.state === 'running' ? 1 : null;
}

interface ServiceEntry {
  service: ServiceRecord;
  tasks: readonly TaskRecord[];
  weights: (number | null)[];
  /** network -> this service's frontends on it (tcp and udp, every port). */
  byNetwork: Map<string, VirtualService[]>;
}

interface TableEntry {
  parts: VirtualService[][];
  table: LbTable;
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The east-west load-balancing tables of a node's task namespaces, computed with structural sharing:
 * a service whose record, tasks and weights did not change yields the very same VirtualService
 * objects as in the previous pass, and a namespace whose frontends all stayed the same gets the same
 * LbTable object. The reconciler skips an unchanged table by identity and the backend skips
 * unchanged services by identity, so a one-backend change costs O(changed) past this planner's
 * O(services) identity checks. Deterministic: the memo never changes a result, only its cost.
 */
export class EastWestPlanner {
  private services = new Map<string, ServiceEntry>();
  private tables = new Map<string, TableEntry>();

  /** The table for a namespace attached to `networks` (the ingress network excluded: it has no VIP traffic). */
  tableFor(networks: readonly string[]): LbTable {
    const key = networks.filter((n) => n !== INGRESS_NETWORK).sort().join(',');
    return this.tables.get(key)?.table ?? { services: [] };
  }

  /** Recomputes the service frontends and the tables of each distinct set of attached networks. */
  plan(snapshot: ClusterSnapshot, live: (node: string) => boolean, drainSeconds: number, now: number, networkSets: readonly (readonly string[])[]): void {
    const tasksOf = new Map<string, TaskRecord[]>();
    for (const t of snapshot.tasks) {
      let list = tasksOf.get(t.service);
      if (!list) tasksOf.set(t.service, (list = []));
      list.push(t);
    }
    const next = new Map<string, ServiceEntry>();
    for (const svc of snapshot.services) {
      const tasks = tasksOf.get(svc.name) ?? [];
      const weights = tasks.map((t) => taskWeight(t, live(t.node), drainSeconds, now));
      const prev = this.services.get(svc.name);
      if (prev && prev.service === svc && sameList(prev.tasks, tasks) && sameList(prev.weights, weights)) {
        next.set(svc.name, prev);
        continue;
      }
      next.set(svc.name, { service: svc, tasks, weights, byNetwork: serviceFrontends(svc, tasks, weights) });
    }
    this.services = next;

    const tables = new Map<string, TableEntry>();
    for (const nets of networkSets) {
      const attached = nets.filter((n) => n !== INGRESS_NETWORK).sort();
      const key = attached.join(',');
      if (tables.has(key)) continue;
      const parts: VirtualService[][] = [];
      for (const entry of next.values()) {
        for (const n of attached) {
          const vs = entry.byNetwork.get(n);
          if (vs) parts.push(vs);
        }
      }
      const prev = this.tables.get(key);
      tables.set(key, prev && sameList(prev.parts, parts) ? prev : { parts, table: { services: parts.flat() } });
    }
    this.tables = tables;
  }
}

/** A service's frontends on each of its networks (vipFrontends; v6 twins on dual-stack ones); dnsrr services have none. */
function serviceFrontends(svc: ServiceRecord, tasks: readonly TaskRecord[], weights: readonly (number | null)[]): Map<string, VirtualService[]> {
  const out = new Map<string, VirtualService[]>();
  if (svc.endpointMode !== 'vip') return out;
  for (const network of Object.keys(svc.vips).sort()) {
    if (network === INGRESS_NETWORK) continue;
    out.set(network, [...vipFrontends(svc, network, svc.vips[network]!, tasks, weights, (t) => t.addresses[network]?.ip), ...ipv6Frontends(svc, network, tasks, weights)]);
  }
  return out;
}
