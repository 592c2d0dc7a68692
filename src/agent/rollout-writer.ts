import type { Cluster } from '../model/cluster.js';
import type { Logger } from '../log/logger.js';
import { rolloutDecision } from '../model/rolling-update.js';
import { RollbackSupersededError } from '../model/service-update-spec.js';
import type { TaskRecord } from '../model/records.js';
import type { RolloutStep } from './rollout-actions.js';

/**
 * Stores rollout status changes and automatic rollbacks. Each write re-decides on the freshly read service by
 * compare-and-swap, so when every agent detects the same failure or completion, one write lands and the others
 * find nothing left to change. True when something was written.
 */
export async function writeRolloutSteps(cluster: Cluster, steps: readonly RolloutStep[], tasks: readonly TaskRecord[], log: Logger): Promise<boolean> {
  let wrote = false;
  for (const step of steps) {
    try {
      if (step.decision.rollback) {
        const { failedVersion, reason } = step.decision.rollback;
        await cluster.rollbackService(step.service, reason, failedVersion);
        log.warn({ event: 'service.update_rolled_back', service: step.service, version: failedVersion, reason });
        wrote = true;
        continue;
      }
      const saved = await cluster.setUpdateStatus(step.service, (fresh) =>
        (fresh.version ?? 0) === step.version ? rolloutDecision(fresh, tasks, Date.now(), step.slots).status : undefined,
      );
      if (saved?.updateStatus) {
        const s = saved.updateStatus;
        log[s.state.endsWith('paused') ? 'warn' : 'info']({ event: 'service.update_status', service: step.service, state: s.state, message: s.message, failedTasks: s.failedTasks?.length ?? 0 });
        wrote = true;
      }
    } catch (err) {
      if (err instanceof RollbackSupersededError) continue;
      log.warn({ event: 'service.update_status_failed', service: step.service, error: (err as Error).message });
    }
  }
  return wrote;
}

/**
 * Claims a start-first successor beside each of `tasks` (this node's outdated tasks of the current batch); the
 * rollout drains each outdated task once its successor is ready. True when a successor was written.
 */
export async function startSuccessors(cluster: Cluster, tasks: readonly TaskRecord[], nodeId: string, known: readonly TaskRecord[], log: Logger): Promise<boolean> {
  let wrote = false;
  for (const t of tasks) {
    try {
      const successor = await cluster.claimSuccessorTask(t.service, t.slot, nodeId, t.id);
      // The mirror may not show our own last write yet: a successor already known was not written now.
      if (known.some((k) => k.id === successor.id)) continue;
      log.info({ event: 'task.successor_claimed', service: t.service, slot: t.slot, task: successor.id, replaces: t.id });
      wrote = true;
    } catch (err) {
      log.warn({ event: 'task.successor_claim_failed', service: t.service, slot: t.slot, replaces: t.id, error: (err as Error).message });
    }
  }
  return wrote;
}
