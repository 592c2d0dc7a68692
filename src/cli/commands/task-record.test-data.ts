import type { TaskRecord } from '../../model/records.js';

/** A stored task for the CLI's unit tests: running on host-a, updated at 2026-01-01T00:00Z, unless `over` says otherwise. */
export function taskRecord(service: string, slot: number, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: `${service}${slot}`.padEnd(24, '0'),
    service,
    slot,
    node: 'host-a',
    addresses: {},
    sandbox: '/run/x',
    desiredState: 'running',
    state: 'running',
    restarts: 0,
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}
