import * as keys from './keys.js';
import type { TaskRecord } from './records.js';

// Start-first rolling updates run two tasks for one slot for a while: the outdated one at the slot's key and its
// successor at <slot>/next, carrying `replaces` (the outdated task's id). Both are ordinary task records, so
// placement, the load-balancing tables, DNS and `task ls` see both while both run; the successor receives traffic
// once it is ready, like any task. Removing the old task moves the successor to the slot's key in the same
// transaction, so the slot never looks free (no node claims it meanwhile). A record without `replaces` is what
// agents before start-first wrote and read.

/** Which of a slot's two records an operation addresses. */
export type SlotPosition = 'primary' | 'successor';

/** The records stored for one slot. */
export interface SlotRecords {
  primary?: TaskRecord;
  successor?: TaskRecord;
}

/** True for a start-first successor that has not yet taken its slot's key. */
export function isSuccessor(task: Pick<TaskRecord, 'replaces'>): boolean {
  return task.replaces !== undefined;
}

/** The key `task` is stored at. */
export function taskRecordKey(task: Pick<TaskRecord, 'service' | 'slot' | 'replaces'>): string {
  return isSuccessor(task) ? keys.taskSuccessorKey(task.service, task.slot) : keys.taskKey(task.service, task.slot);
}

/** Where task `taskId` is among a slot's records, or undefined when it is in neither. */
export function positionOf(slot: SlotRecords, taskId: string): SlotPosition | undefined {
  if (slot.primary?.id === taskId) return 'primary';
  if (slot.successor?.id === taskId) return 'successor';
  return undefined;
}

/**
 * What removing `taskId` (any of the slot's tasks when undefined, the primary first) does: which record goes,
 * and whether the successor then takes the slot's key. Undefined when there is nothing to remove.
 */
export function removalOf(slot: SlotRecords, taskId?: string): { remove: SlotPosition; promote: boolean } | undefined {
  const at = taskId === undefined ? (slot.primary ? 'primary' : slot.successor ? 'successor' : undefined) : positionOf(slot, taskId);
  if (at === undefined) return undefined;
  return { remove: at, promote: at === 'primary' && slot.successor !== undefined };
}

/** The successor as it is stored once it holds the slot's key: the same task, no longer replacing anything. */
export function promoted(successor: TaskRecord): TaskRecord {
  const { replaces: _replaces, ...rest } = successor;
  return rest;
}
