import type { ClusterSnapshot } from '../model/cluster.js';
import type { TaskRecord } from '../model/records.js';
import { activeConfig, rolloutDecision } from '../model/rolling-update.js';
import { isGlobal, planPlacement } from '../model/cluster-placement.js';
import type { RolloutDecision } from '../model/rolling-update.js';

/** One service's rollout step as seen by one node. */
export interface RolloutStep {
  service: string;
  /** The service version the decision was made for (a status write or rollback of another version is stale). */
  version: number;
  decision: RolloutDecision;
  /** The slots the decision was made over (a global service's nodes' slots); absent: 1..replicas. */
  slots?: number[];
}

/** What this node does for rolling updates in one pass. */
export interface RolloutActions {
  /**
   * Our tasks to drain: outdated ones of a stop-first batch (their slot is claimed again at the new version),
   * outdated ones whose start-first successor is ready, and successors of a superseded version.
   */
  drain: TaskRecord[];
  /** Our outdated tasks of a start-first batch: a successor is claimed beside each (Cluster.claimSuccessorTask). */
  start: TaskRecord[];
  /** Status changes and rollbacks to store; every node computes them, compare-and-swap keeps one. */
  writes: RolloutStep[];
  /** The earliest time the decision changes with time alone (a delay or a monitor window ends), epoch ms. */
  wakeAt?: number;
}

/** Pure: the rollout actions of `nodeId` from the snapshot (src/model/rolling-update.ts decides). */
export function rolloutActions(snapshot: Pick<ClusterSnapshot, 'services' | 'tasks' | 'nodes'> & Partial<Pick<ClusterSnapshot, 'nodeInfo'>>, nodeId: string, now: Date): RolloutActions {
  const out: RolloutActions = { drain: [], start: [], writes: [] };
  // A global service's slots are its nodes' (placement); only computed when one is rolling out.
  let placement: ReturnType<typeof planPlacement> | undefined;
  for (const service of snapshot.services) {
    if (!service.updateStatus) continue;
    let slots: number[] | undefined;
    if (isGlobal(service)) {
      placement ??= planPlacement(snapshot);
      slots = [...(placement.get(service.name)?.slots.keys() ?? [])].sort((a, b) => a - b);
    }
    const decision = rolloutDecision(service, snapshot.tasks, now.getTime(), slots);
    const startFirst = activeConfig(service).order === 'start-first';
    for (const t of decision.replace) if (t.node === nodeId && t.desiredState === 'running') (startFirst ? out.start : out.drain).push(t);
    for (const t of decision.retire) if (t.node === nodeId && t.desiredState === 'running') out.drain.push(t);
    if (decision.status || decision.rollback) out.writes.push({ service: service.name, version: service.version ?? 0, decision, ...(slots ? { slots } : {}) });
    if (decision.wakeAt !== undefined) out.wakeAt = Math.min(out.wakeAt ?? Infinity, decision.wakeAt);
  }
  return out;
}
