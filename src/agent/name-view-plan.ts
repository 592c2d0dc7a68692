import type { ClusterSnapshot } from '../model/cluster.js';
import { attachedNetworks } from '../model/cluster.js';
import { addressIpv6, v6Field } from '../model/dual-stack.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../model/records.js';
import { buildNameView, type NameView, type ServiceRecord as DnsService, type TaskRecord as DnsTask } from '../dns/name-view.js';
import type { LocalTask, NodePlan } from './node-plan.js';

// The node plan's DNS part: what each task namespace's resolver answers, and what is kept between passes.

/** A task's name, as the resolver and the process plan give it: SERVICE.SLOT. */
export const taskName = (t: Pick<TaskRecord, 'service' | 'slot'>): string => `${t.service}.${t.slot}`;

/**
 * Keeps DNS inputs and views across passes. A service's DNS entry is kept by its record; a task's by its
 * content (a replaced record that changes no name, such as a new updatedAt, maps to the same object); and
 * a view while its inputs are the same objects. Before, every pass rebuilt every view and the reconciler
 * serialised each one to compare it: at 100 services that was a quarter of a no-op pass.
 */
export class NameViewMemo {
  private services = new WeakMap<ServiceRecord, DnsService>();
  private byRecord = new WeakMap<TaskRecord, DnsTask>();
  private byContent = new Map<string, DnsTask>();
  private readonly contentOf = new WeakMap<DnsTask, string>();
  private networks: readonly NetworkRecord[] = [];
  private views = new Map<string, { services: DnsService[]; tasks: DnsTask[]; view: NameView }>();

  /** The DNS entries of these services and tasks, the same objects as last time where nothing changed. */
  inputs(snapshot: ClusterSnapshot, alive: readonly TaskRecord[]): { services: DnsService[]; tasks: DnsTask[] } {
    // A task's v6 address comes from its network's prefix: other networks, other entries.
    if (!sameItems(snapshot.networks, this.networks)) {
      this.byRecord = new WeakMap();
      this.byContent.clear();
      this.networks = snapshot.networks;
    }
    const networksByName = new Map(snapshot.networks.map((n) => [n.name, n]));
    const services = snapshot.services.map((s) => {
      let d = this.services.get(s);
      if (!d) this.services.set(s, (d = dnsService(s)));
      return d;
    });
    const tasks = alive.map((t) => {
      let d = this.byRecord.get(t);
      if (!d) {
        const fresh = dnsTask(t, networksByName);
        const key = JSON.stringify(fresh);
        d = this.byContent.get(key) ?? fresh;
        this.byContent.set(key, d);
        this.contentOf.set(d, key);
        this.byRecord.set(t, d);
      }
      return d;
    });
    // Entries of tasks gone pile up: keep only the live ones' when they outnumber them.
    if (this.byContent.size > 2 * tasks.length + 64) this.byContent = new Map(tasks.map((d) => [this.contentOf.get(d)!, d]));
    return { services, tasks };
  }

  /** The view for tasks on `nets`: last pass's object when its inputs are the same objects. */
  view(nets: string[], services: DnsService[], tasks: DnsTask[], seen: Set<string>): NameView {
    const key = nets.join(',');
    seen.add(key);
    const last = this.views.get(key);
    if (last && sameItems(last.services, services) && sameItems(last.tasks, tasks)) return last.view;
    const view = buildNameView({ taskNetworks: nets, services, tasks });
    this.views.set(key, { services, tasks, view });
    return view;
  }

  /** Forgets the views of network lists no local task has any more. */
  keepOnly(seen: ReadonlySet<string>): void {
    for (const key of [...this.views.keys()]) if (!seen.has(key)) this.views.delete(key);
  }
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
/** DNS: a task sees the services and tasks of its own networks; the ingress network has no names (as in Swarm). */
export function nameViews(snapshot: ClusterSnapshot, tasks: LocalTask[], alive: TaskRecord[], memo: NameViewMemo): NodePlan['nameViews'] {
  if (tasks.length === 0) return [];
  const inputs = memo.inputs(snapshot, alive);
  // Tasks on the same networks see the same names: one view per distinct network list.
  const seen = new Set<string>();
  const views = tasks.map((t) => {
    const nets = t.interfaces.map((i) => i.network).filter((n) => n !== INGRESS_NETWORK);
    return { sandbox: t.sandbox, view: memo.view(nets, inputs.services, inputs.tasks, seen) };
  });
  memo.keepOnly(seen);
  return views;
}

/** A service as the resolver sees it: its VIPs and aliases on each network but ingress. */
function dnsService(s: ServiceRecord): DnsService {
  return {
    name: s.name,
    endpointMode: s.endpointMode,
    attachments: attachedNetworks(s)
      .filter((n) => n !== INGRESS_NETWORK)
      .map((n) => ({ network: n, vip: s.endpointMode === 'vip' ? (s.vips[n] ?? null) : null, ...(s.vips6?.[n] !== undefined ? { vip6: s.vips6[n] } : {}) }))
      .map((a) => ({ ...a, aliases: s.aliases?.[a.network] ?? [] })),
    ports: s.ports.map((p) => ({ protocol: p.protocol, targetPort: p.target, publishedPort: p.published })),
  };
}

/** A task as the resolver sees it: its name, whether it runs, its addresses on each network but ingress. */
function dnsTask(t: TaskRecord, networksByName: ReadonlyMap<string, NetworkRecord>): DnsTask {
  return {
    name: taskName(t),
    service: t.service,
    running: t.state === 'running' && t.desiredState === 'running',
    ips: Object.entries(t.addresses)
      .filter(([n]) => n !== INGRESS_NETWORK)
      .map(([network, a]) => ({ network, ip: a.ip, ...v6Field(addressIpv6(networksByName.get(network), a)) })),
  };
}
