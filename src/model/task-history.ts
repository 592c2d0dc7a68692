import { z } from 'zod';
import type { Compare, KvStore, TxnOp } from '../store/kv-store.js';
import * as keys from './keys.js';
import type { TaskRecord } from './records.js';

// What `meshnet service ps` shows under a slot's current task: the slot's last finished tasks with their error,
// as Docker keeps them. A task record is deleted (or replaced) when its task ends, so the model appends a compact
// entry to the slot's history key in the same transaction. meshnet restarts a crashed process in place (same task
// id), so each restart also leaves an entry: the run that ended, with the reason it ended.

/** Docker's default task-history-retention-limit: tasks kept per slot, the current one included. */
export const TASK_HISTORY_RETENTION_LIMIT = 5;
/** Finished tasks kept per slot beside the current one. */
export const MAX_FINISHED_PER_SLOT = TASK_HISTORY_RETENTION_LIMIT - 1;
/** Longest error kept in an entry: a reason is a short line, and a history key must stay small. */
const MAX_ERROR_LENGTH = 512;

/** How a task run ended: its record was deleted, another task took its slot, or its process was restarted in place. */
export type FinishKind = 'removed' | 'replaced' | 'restarted';

/** One finished task run. Loose, so entries written by a newer meshnet are kept and shown. */
export const FinishedTaskSchema = z.looseObject({
  id: z.string().min(1).max(64),
  node: z.string().min(1).max(253),
  /** `failed` (it ended with an error) or `shutdown` (it was stopped); shown capitalised. */
  state: z.string().min(1).max(32),
  error: z.string().max(MAX_ERROR_LENGTH).optional(),
  /** How many restarts the task had when this run ended. */
  restarts: z.number().int().min(0).optional(),
  how: z.string().max(32).optional(),
  endedAt: z.iso.datetime(),
});
/** One finished task run. */
export type FinishedTask = z.infer<typeof FinishedTaskSchema>;

/** The entry recording that `task` (as stored) ended at `at`; `error` is why a restarted run ended. */
export function finishedTask(task: TaskRecord, how: FinishKind, at: Date, error?: string): FinishedTask {
  const failed = how === 'restarted' || task.state === 'failed';
  const why = how === 'restarted' ? error : task.state === 'failed' ? task.message : undefined;
  return {
    id: task.id,
    node: task.node,
    state: failed ? 'failed' : 'shutdown',
    ...(why !== undefined ? { error: why.slice(0, MAX_ERROR_LENGTH) } : {}),
    restarts: task.restarts,
    how,
    endedAt: at.toISOString(),
  };
}

/**
 * Why a restarted run ended, from what the agent reported with the restart: the reason in `exit 1, restarting`
 * (without the note that a restart followed), the reason of a task that failed since, or the reason the record
 * already showed. Undefined when none names one (the process got ready again before the agent looked).
 */
export function restartError(update: { state?: string | undefined; message?: string | undefined }, previous: string | undefined): string | undefined {
  const reason = (m: string | undefined) => (m === undefined ? undefined : /^(.*), restart(?:ing|ed)$/.exec(m)?.[1]);
  return reason(update.message) ?? (update.state === 'failed' ? update.message : undefined) ?? reason(previous);
}

/** `history` with `entry` added, newest first, capped at `limit` entries. */
export function appendFinished(history: readonly FinishedTask[], entry: FinishedTask, limit = MAX_FINISHED_PER_SLOT): FinishedTask[] {
  return [entry, ...history].slice(0, limit);
}

/**
 * A stored history, newest first. History only informs the operator, so it never blocks a removal: what cannot be
 * read is dropped (a bad entry alone, or the whole value when it is no JSON array).
 */
export function decodeTaskHistory(value: string | undefined): FinishedTask[] {
  if (value === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((e) => {
    const r = FinishedTaskSchema.safeParse(e);
    return r.success ? [r.data] : [];
  });
}

/**
 * The guards and writes that append `task`'s end to its slot's history, for the transaction that deletes or
 * replaces its record. Empty for attached tasks (another runtime runs them) and when the service is gone: the
 * guard on the service record keeps a history from outliving its service (removeService clears what was there).
 */
export async function historyAppendTxn(store: KvStore, task: TaskRecord, how: FinishKind, at: Date, error?: string): Promise<{ compare: Compare[]; ops: TxnOp[] }> {
  if (task.external) return { compare: [], ops: [] };
  const key = keys.taskHistoryKey(task.service, task.slot);
  const [service, history] = await Promise.all([store.get(keys.serviceKey(task.service)), store.get(key)]);
  if (service === undefined) return { compare: [], ops: [] };
  const next = appendFinished(decodeTaskHistory(history?.value), finishedTask(task, how, at, error));
  return {
    compare: [{ key: service.key, modRevision: service.modRevision }, history === undefined ? { key, absent: true } : { key, modRevision: history.modRevision }],
    ops: [{ type: 'put', key, value: JSON.stringify(next) }],
  };
}

/** A service's task histories by slot (newest entry first). */
export async function readServiceHistory(store: KvStore, service: string): Promise<Map<number, FinishedTask[]>> {
  const prefix = keys.serviceTaskHistoryPrefix(service);
  const { kvs } = await store.range(prefix);
  const out = new Map<number, FinishedTask[]>();
  for (const kv of kvs) {
    const slot = Number(kv.key.slice(prefix.length));
    if (Number.isInteger(slot) && slot > 0) out.set(slot, decodeTaskHistory(kv.value));
  }
  return out;
}

/** Deletes a removed service's task histories (none is written once its record is gone). */
export async function removeServiceHistory(store: KvStore, service: string): Promise<void> {
  const { kvs } = await store.range(keys.serviceTaskHistoryPrefix(service));
  for (const kv of kvs) await store.delete(kv.key);
}
