import type { TaskRecord } from '../../model/records.js';

/**
 * A table row (or, without `task`, the header) with a HEALTH column after STATE when any of `tasks`
 * has a health check; otherwise the row as it is, so `task ls` of services without checks is unchanged.
 */
export function withHealthColumn<T>(tasks: readonly TaskRecord[], row: T[], task?: TaskRecord): (T | string)[] {
  if (!tasks.some((t) => t.health !== undefined)) return row;
  const at = 4; // after TASK, NODE, DESIRED, STATE
  return [...row.slice(0, at), task ? (task.health?.status ?? '') : 'HEALTH', ...row.slice(at)];
}
