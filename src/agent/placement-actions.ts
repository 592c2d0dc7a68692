import { placeReplicas } from '../model/placement.js';
import type { ClusterSnapshot } from '../model/cluster.js';
import type { TaskRecord } from '../model/records.js';

/** What this node must change in the store so that every replica runs exactly once. */
export interface PlacementActions {
  /** Slots placed here that have no task of ours yet (new, scaled up, or moved off a dead node). */
  claim: { service: string; slot: number }[];
  /** Our tasks that must stop: they enter draining (desiredState shutdown) first. */
  drain: TaskRecord[];
  /** Our draining tasks whose deadline passed: stop the process, delete the record. */
  remove: TaskRecord[];
}

/**
 * Pure: from the cluster's state, the slots this node must claim, drain and remove.
 * Every agent computes the same placement (rendezvous hashing over live nodes), so no
 * scheduler daemon is needed; compare-and-swap in claimTask settles any race.
 */
export function placementActions(snapshot: ClusterSnapshot, nodeId: string, now: Date, drainSeconds: number): PlacementActions {
  const live = snapshot.nodes.map((n) => n.id);
  const actions: PlacementActions = { claim: [], drain: [], remove: [] };
  if (!live.includes(nodeId)) return actions;
  const services = new Map(snapshot.services.map((s) => [s.name, s]));
  const bySlot = new Map<string, TaskRecord>();
  for (const t of snapshot.tasks) bySlot.set(`${t.service}/${t.slot}`, t);

  for (const svc of snapshot.services) {
    const current = new Map<number, string>();
    for (const t of snapshot.tasks) {
      if (t.service === svc.name && t.desiredState === 'running' && live.includes(t.node)) current.set(t.slot, t.node);
    }
    const placement = placeReplicas(svc.name, svc.replicas, live, current);
    for (const [slot, node] of placement) {
      if (node !== nodeId) continue;
      const task = bySlot.get(`${svc.name}/${slot}`);
      if (!task || task.node !== nodeId || task.desiredState !== 'running') actions.claim.push({ service: svc.name, slot });
    }
  }

  for (const t of snapshot.tasks) {
    if (t.node !== nodeId) continue;
    const svc = services.get(t.service);
    if (t.desiredState === 'shutdown') {
      if (now.getTime() - Date.parse(t.updatedAt) >= drainSeconds * 1000 || !svc) actions.remove.push(t);
      continue;
    }
    const keep = svc && t.slot <= svc.replicas && placeReplicas(svc.name, svc.replicas, live, currentOf(snapshot, svc.name, live)).get(t.slot) === nodeId;
    if (!keep) (svc ? actions.drain : actions.remove).push(t);
  }
  return actions;
}

function currentOf(snapshot: ClusterSnapshot, service: string, live: string[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const t of snapshot.tasks) if (t.service === service && t.desiredState === 'running' && live.includes(t.node)) m.set(t.slot, t.node);
  return m;
}
