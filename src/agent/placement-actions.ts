import { isGlobal, placeSnapshot } from '../model/cluster-placement.js';
import type { ClusterSnapshot } from '../model/cluster.js';
import type { TaskRecord } from '../model/records.js';
import { rolloutActions, type RolloutActions } from './rollout-actions.js';

/** What this node must change in the store so that every replica runs exactly once. */
export interface PlacementActions {
  /** Slots placed here that are free: no task, or the task of a node that is no longer live. */
  claim: { service: string; slot: number }[];
  /** Our tasks that must stop: they enter draining (desiredState shutdown) first. */
  drain: TaskRecord[];
  /**
   * Our draining tasks whose deadline passed, and tasks of deleted services: stop, then delete the record. The
   * first live node (by id) also lists global tasks of gone nodes whose slot no node takes over.
   */
  remove: TaskRecord[];
  /** Rolling updates: status writes and wake-ups (our outdated tasks of the current batch are in `drain`). */
  rollout?: RolloutActions;
}

/**
 * Pure: from the cluster's state, the slots this node must claim, drain and remove.
 * Every agent computes the same placement (rendezvous hashing over live nodes as their availability
 * allows), so no scheduler daemon is needed; compare-and-swap in claimTask settles any race.
 * A slot moves off a live node (drained, paused elsewhere, rebalanced) the way scale-down removes one:
 * its owner drains the task (weight 0 for drainSeconds), stops it and deletes its record, and only then
 * does the new owner claim the slot, so no connection goes to a task that is being stopped. Services with
 * constraints, a per-node cap or global mode follow the same path: placement decides, these actions follow.
 */
export function placementActions(snapshot: ClusterSnapshot, nodeId: string, now: Date, drainSeconds: number): PlacementActions {
  const actions: PlacementActions = { claim: [], drain: [], remove: [] };
  if (!snapshot.nodes.some((n) => n.id === nodeId)) return actions;
  const placements = placeSnapshot(snapshot);
  const bySlot = new Map(snapshot.tasks.map((t) => [`${t.service}/${t.slot}`, t]));
  const live = new Set(snapshot.nodes.map((n) => n.id));

  for (const [service, placement] of placements) {
    for (const [slot, node] of placement) {
      if (node !== nodeId) continue;
      const task = bySlot.get(`${service}/${slot}`);
      // Held by a live node (ours while draining, or another's): its owner frees the slot after the drain.
      if (task && live.has(task.node)) continue;
      actions.claim.push({ service, slot });
    }
  }

  for (const t of snapshot.tasks) {
    if (t.node !== nodeId) continue;
    const placement = placements.get(t.service);
    if (!placement) {
      actions.remove.push(t);
    } else if (t.external) {
      // Attached by another runtime: it stays until `meshnet task detach` or its service goes.
    } else if (t.desiredState === 'shutdown') {
      if (now.getTime() - Date.parse(t.updatedAt) >= drainSeconds * 1000) actions.remove.push(t);
    } else if (placement.get(t.slot) !== nodeId) {
      actions.drain.push(t);
    }
  }

  // A replicated slot of a gone node is claimed by another node, which replaces its record. A global slot may
  // have no taker (fewer eligible nodes now), and no agent owns the record: one node, the same for all, removes it.
  if ([...live].sort()[0] === nodeId) {
    const globals = new Set(snapshot.services.filter(isGlobal).map((s) => s.name));
    for (const t of snapshot.tasks) {
      if (!live.has(t.node) && !t.external && globals.has(t.service) && !placements.get(t.service)?.has(t.slot)) actions.remove.push(t);
    }
  }
  // Rolling updates: our outdated tasks of the current batch leave through the same drain path.
  actions.rollout = rolloutActions(snapshot, nodeId, now);
  for (const t of actions.rollout.drain) if (!actions.drain.includes(t)) actions.drain.push(t);
  return actions;
}
