import type { ClusterSnapshot } from '../model/cluster.js';
import type { TaskRecord } from '../model/records.js';

/** The tasks the load-balancing tables and `tasks.` answers are built from, once VTEP verdicts are applied. */
export interface ReachableView {
  snapshot: ClusterSnapshot;
  alive: TaskRecord[];
}

const serving = (t: TaskRecord): boolean => t.state === 'running' && t.desiredState === 'running';

/**
 * Pure: leaves out the tasks on nodes whose VTEP does not answer over the overlay (vtep-liveness.ts),
 * service by service, but never a service's last serving backends: when every task that could serve
 * a service is on an unreachable node, they all stay (a probe verdict alone never empties a table;
 * the lease decides then). Returns its inputs themselves when nothing is left out, so a node with no
 * verdict plans exactly as without probes.
 */
export function reachableView(snapshot: ClusterSnapshot, alive: TaskRecord[], unreachable: ReadonlySet<string> | undefined, live: (node: string) => boolean): ReachableView {
  if (!unreachable || unreachable.size === 0) return { snapshot, alive };
  const hit = new Set<string>();
  const keep = new Set<string>();
  for (const t of snapshot.tasks) {
    if (unreachable.has(t.node)) hit.add(t.service);
    else if (live(t.node) && serving(t)) keep.add(t.service);
  }
  const out = (t: TaskRecord): boolean => unreachable.has(t.node) && keep.has(t.service);
  if (![...hit].some((s) => keep.has(s))) return { snapshot, alive };
  return { snapshot: { ...snapshot, tasks: snapshot.tasks.filter((t) => !out(t)) }, alive: alive.filter((t) => !out(t)) };
}
