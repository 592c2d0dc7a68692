import type { ServiceRecord, TaskRecord } from './records.js';
import { DEFAULT_UPDATE_CONFIG, type UpdateConfigRecord, type UpdateStatusRecord } from './rollout-records.js';
import { serviceVersion } from './service-update-spec.js';
import { isSuccessor } from './successor-task.js';

// Pure: where a service's rollout stands and what may happen next, from the stored service and its tasks only.
// Every agent computes the same answer from the same snapshot, and an agent that restarts mid-rollout finds
// everything it needs in the store: which tasks are outdated (their specVersion), which slots are in flight
// (draining, being claimed, not ready yet), when the last batch finished (its tasks' updatedAt), and which new
// tasks already failed (updateStatus.failedTasks). Batches go in slot order, so an agent acting on a slightly
// older snapshot can only pick a slot that is already being replaced, never a second one.
// Stop-first drains an outdated task, and its slot is claimed again at the new version. Start-first claims a
// successor beside it (src/model/successor-task.ts) and drains the outdated task only once the successor is
// ready, so the service never runs fewer tasks than its replicas; the slot's replacement ends when the outdated
// task is removed and the successor takes its key.

/** The version of the spec a task runs (absent: 0, tasks made before rolling updates). */
export function taskVersion(task: Pick<TaskRecord, 'specVersion'>): number {
  return task.specVersion ?? 0;
}

/** The fields of a service that decide what a task's process runs. */
export type RunSpec = Pick<ServiceRecord, 'command' | 'env' | 'user' | 'capAdd' | 'capDrop'>;

/**
 * What `task` runs: its version's spec. An outdated task keeps running the previous spec until the rollout
 * replaces it (instead of restarting in place); a version older than the previous one is no longer stored, and
 * runs the current spec.
 */
export function runSpecOf(service: ServiceRecord, task: Pick<TaskRecord, 'specVersion'>): RunSpec {
  const prev = service.previousSpec;
  if (!prev || taskVersion(task) === serviceVersion(service) || taskVersion(task) !== prev.version) return service;
  return {
    command: prev.command,
    ...(prev.env !== undefined ? { env: prev.env } : {}),
    ...(prev.user !== undefined ? { user: prev.user } : {}),
    ...(prev.capAdd !== undefined ? { capAdd: prev.capAdd as RunSpec['capAdd'] } : {}),
    ...(prev.capDrop !== undefined ? { capDrop: prev.capDrop as RunSpec['capDrop'] } : {}),
  };
}

/** True while the service's rollout replaces tasks (updating or rolling back). */
export function rolloutActive(service: Pick<ServiceRecord, 'updateStatus'>): boolean {
  const state = service.updateStatus?.state;
  return state === 'updating' || state === 'rollback_started';
}

/** The config pacing the rollout in progress: rollbackConfig while rolling back, else updateConfig. */
export function activeConfig(service: Pick<ServiceRecord, 'updateStatus' | 'updateConfig' | 'rollbackConfig'>): UpdateConfigRecord {
  const rollingBack = service.updateStatus?.state.startsWith('rollback') ?? false;
  return (rollingBack ? service.rollbackConfig : service.updateConfig) ?? DEFAULT_UPDATE_CONFIG;
}

/** What the snapshot says should happen next in one service's rollout. */
export interface RolloutDecision {
  /** Outdated tasks to replace now: their owners drain them (stop-first) or start their successor (start-first). */
  replace: TaskRecord[];
  /** Tasks to drain now: outdated ones whose start-first successor is ready, and successors of a superseded version. */
  retire: TaskRecord[];
  /** The status to store (by compare-and-swap, by whichever agent gets there first); undefined: unchanged. */
  status?: UpdateStatusRecord;
  /** Failures crossed the threshold and the failure action is rollback: roll back the failing version. */
  rollback?: { failedVersion: number; reason: string };
  /** When the snapshot's answer changes with time alone (a delay or a monitor window ends), epoch ms. */
  wakeAt?: number;
}

/** Why a new task counts as failed, or undefined while it is healthy or still within its monitor window. */
export function taskFailure(task: TaskRecord, monitorMs: number, now: number): string | undefined {
  if (task.state === 'failed') return `task ${task.service}.${task.slot} failed${task.message ? `: ${task.message}` : ''}`;
  if (task.restarts > 0) return `task ${task.service}.${task.slot} exited and was restarted${task.message ? ` (${task.message})` : ''}`;
  if (monitorMs > 0 && task.state !== 'running' && now - Date.parse(task.updatedAt) > monitorMs) {
    return `task ${task.service}.${task.slot} was not ready within ${monitorMs / 1000}s${task.message ? ` (${task.message})` : ''}`;
  }
  return undefined;
}

/** Slots 1..replicas: a replicated service's slots. */
export function replicaSlots(replicas: number): number[] {
  return Array.from({ length: replicas }, (_, i) => i + 1);
}

/**
 * The rollout decision for `service` from its tasks (any order; other services' tasks are ignored), over
 * `slots`: 1..replicas for a replicated service; a global one's are the slots placement gives its nodes.
 */
export function rolloutDecision(service: ServiceRecord, allTasks: readonly TaskRecord[], now: number, slots: readonly number[] = replicaSlots(service.replicas)): RolloutDecision {
  const status = service.updateStatus;
  const version = serviceVersion(service);
  const slotSet = new Set(slots);
  const tasks = allTasks.filter((t) => t.service === service.name && !t.external && slotSet.has(t.slot));
  // Successors of another version (the update was rolled back or updated again) go, whatever the rollout's state.
  const stale = tasks.filter((t) => isSuccessor(t) && t.desiredState === 'running' && taskVersion(t) !== version);
  if (!status || !rolloutActive(service)) return { replace: [], retire: stale };
  const config = activeConfig(service);
  const rollingBack = status.state === 'rollback_started';
  const fresh = tasks.filter((t) => taskVersion(t) === version && t.desiredState === 'running');

  // Failure accounting: a set of task ids kept in the status, so agents recording the same failure agree.
  const known = new Set(status.failedTasks ?? []);
  const found = fresh.map((t) => ({ t, why: taskFailure(t, config.monitorMs, now) })).filter((f) => f.why !== undefined && !known.has(f.t.id));
  const failed = new Set([...known, ...found.map((f) => f.t.id)]);
  let next: UpdateStatusRecord | undefined;
  if (found.length > 0) {
    const firstWhy = found[0]!.why!;
    const failures = [...failed].sort();
    const over = failed.size / Math.max(slots.length, 1) > config.maxFailureRatio;
    next = { ...status, failedTasks: failures };
    if (over && config.failureAction === 'pause') {
      return { replace: [], retire: stale, status: { ...next, state: rollingBack ? 'rollback_paused' : 'paused', message: `${rollingBack ? 'rollback' : 'update'} paused: ${firstWhy}` } };
    }
    if (over && config.failureAction === 'rollback' && !rollingBack) {
      return { replace: [], retire: stale, status: next, rollback: { failedVersion: version, reason: `update rolled back: ${firstWhy}` } };
    }
  }

  // Slots whose replacement is under way: no task (being claimed), an outdated task draining, a new task not
  // ready yet, or a start-first successor until the task it replaces is gone. A failed new task is done with
  // (under continue), so it does not hold up the next batch.
  let inFlight = 0;
  const outdated: TaskRecord[] = [];
  const retire = [...stale];
  let monitorEnds = Infinity;
  const watch = (t: TaskRecord) => {
    if (config.monitorMs > 0) monitorEnds = Math.min(monitorEnds, Date.parse(t.updatedAt) + config.monitorMs + 1);
  };
  for (const slot of slots) {
    const held = tasks.filter((t) => t.slot === slot && !isSuccessor(t));
    const task = held.find((t) => t.desiredState === 'running') ?? held[0];
    const successor = tasks.find((t) => t.slot === slot && isSuccessor(t) && t.desiredState === 'running' && taskVersion(t) === version);
    if (successor) {
      const done = successor.state === 'running' || failed.has(successor.id);
      if (done && task?.desiredState === 'running' && task.id === successor.replaces) retire.push(task);
      if (!done) watch(successor);
      if (!failed.has(successor.id) || task?.id === successor.replaces) inFlight++;
    } else if (!task || task.desiredState !== 'running') inFlight++;
    else if (taskVersion(task) !== version) outdated.push(task);
    else if (task.state !== 'running' && !failed.has(task.id)) {
      inFlight++;
      watch(task);
    }
  }

  if (outdated.length === 0 && inFlight === 0 && stale.length === 0) {
    const done: UpdateStatusRecord = {
      ...(next ?? status),
      state: rollingBack ? 'rollback_completed' : 'completed',
      completedAt: new Date(now).toISOString(),
      message: rollingBack ? 'rollback completed' : 'update completed',
    };
    return { replace: [], retire, status: done };
  }

  // The next batch waits for the previous one to be ready, then for the delay after the last of it became ready.
  const decision: RolloutDecision = { replace: [], retire, ...(next ? { status: next } : {}), ...(monitorEnds !== Infinity ? { wakeAt: monitorEnds } : {}) };
  const budget = config.parallelism === 0 ? outdated.length : config.parallelism - inFlight;
  if (budget <= 0 || outdated.length === 0) return decision;
  if (config.delayMs > 0) {
    const readyTimes = fresh.filter((t) => t.state === 'running').map((t) => Date.parse(t.updatedAt));
    const lastReady = readyTimes.length > 0 ? Math.max(...readyTimes) : -Infinity;
    // A delay counts from the last batch of this rollout, not from tasks that were already current.
    if (lastReady >= Date.parse(status.startedAt) && now < lastReady + config.delayMs) {
      return { ...decision, wakeAt: Math.min(decision.wakeAt ?? Infinity, lastReady + config.delayMs) };
    }
  }
  return { ...decision, replace: outdated.sort((a, b) => a.slot - b.slot).slice(0, budget) };
}
