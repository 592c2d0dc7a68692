import type { ClusterSnapshot } from '../model/cluster.js';
import type { TaskState } from '../tasks/task-meta.js';
import type { LbTable, VirtualService } from '../vip/lb-table.js';
import type { NodePlan } from './node-plan.js';
import type { PassReport } from './node-reconciler.js';

/** PassReport fields that count kernel or process changes, with the surface label each gets in /metrics. */
export const CHANGE_SURFACES = {
  namespaces: 'namespace',
  sysctls: 'sysctl',
  gwLegs: 'gwleg',
  overlayOps: 'overlay',
  lbChanges: 'lb',
  meshRules: 'rules',
  health: 'health',
  processes: 'process',
  dns: 'dns',
  removed: 'removed',
  pruned: 'pruned',
} as const satisfies Record<Exclude<keyof PassReport, 'errors'>, string>;

/** Every state a task process can be in, so /metrics shows zeros rather than missing series. */
export const TASK_STATES: readonly TaskState[] = ['starting', 'running', 'exited', 'failed', 'shutdown'];

/**
 * The surface a PassReport error names: the reconciler writes each as `<surface> <target>: <message>`
 * (or `prune: <message>`), so the first word is the surface.
 */
export function errorSurface(error: string): string {
  const m = /^([a-z]+)[\s:]/.exec(error);
  return m ? m[1]! : 'other';
}

/** One load-balancing frontend with its backends, labelled for people. */
export interface LbSeries {
  /** The meshnet service it belongs to (its LB id when no service claims it). */
  service: string;
  /** `VIP/proto` (every port), `VIP:port/proto`, or `ingress:PORT/proto` for a published port. */
  frontend: string;
  backends: { backend: string; weight: number }[];
}

/**
 * The backend sets a node plan programs, one series per frontend. Tables shared between task
 * namespaces (the planner hands every task on the same networks one object) count once, and a
 * frontend present in several tables (a service on two networks' sets) once too.
 */
export function lbSeries(plan: Pick<NodePlan, 'lbTables'>, snapshot: Pick<ClusterSnapshot, 'services'>): LbSeries[] {
  const byVip = new Map<string, string>();
  const byPublished = new Map<string, string>();
  for (const sv of snapshot.services) {
    for (const ip of Object.values(sv.vips)) byVip.set(ip, sv.name);
    for (const p of sv.ports) byPublished.set(`${p.protocol}/${p.published}`, sv.name);
  }
  const seenTables = new Set<LbTable>();
  const seen = new Set<string>();
  const out: LbSeries[] = [];
  for (const { table } of plan.lbTables) {
    if (seenTables.has(table)) continue;
    seenTables.add(table);
    for (const vs of table.services) {
      if (seen.has(vs.id)) continue;
      seen.add(vs.id);
      out.push(seriesOf(vs, byVip, byPublished));
    }
  }
  return out;
}

function seriesOf(vs: VirtualService, byVip: Map<string, string>, byPublished: Map<string, string>): LbSeries {
  const f = vs.frontend;
  const service = (f.kind === 'vip' ? byVip.get(f.address) : byPublished.get(`${f.protocol}/${f.port}`)) ?? vs.id;
  const frontend = f.kind === 'vip' ? `${f.address}${f.port === 0 ? '' : `:${f.port}`}/${f.protocol}` : `ingress:${f.port}/${f.protocol}`;
  return { service, frontend, backends: vs.backends.map((b) => ({ backend: b.port === 0 ? b.address : `${b.address}:${b.port}`, weight: b.weight })) };
}

/** How many tasks are in each state (every state present, zeros included). */
export function taskStateCounts(states: readonly TaskState[]): Record<TaskState, number> {
  const out = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
  for (const s of states) out[s]++;
  return out;
}
