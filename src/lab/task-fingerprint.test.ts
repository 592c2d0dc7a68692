import { describe, expect, it } from 'vitest';
import { taskChanges, type TaskFingerprint } from './task-fingerprint.js';

const t = (over: Partial<TaskFingerprint> = {}): TaskFingerprint => ({ service: 'web', slot: 1, id: 'aaaaaaaa', node: 'host-a', pid: 100, restarts: 0, state: 'running', ...over });

describe('taskChanges', () => {
  it('finds nothing when the same processes still run', () => {
    expect(taskChanges([t(), t({ slot: 2, id: 'bbbbbbbb', pid: 200 })], [t({ slot: 2, id: 'bbbbbbbb', pid: 200 }), t()])).toEqual([]);
  });

  it('names a new process, a restart and a state change of one task', () => {
    expect(taskChanges([t()], [t({ pid: 101, restarts: 1, state: 'starting' })])).toEqual([
      'web.1 (aaaaaaaa on host-a) changed process 100 -> 101',
      'web.1 (aaaaaaaa on host-a) restarted (0 -> 1 restarts)',
      'web.1 (aaaaaaaa on host-a) went running -> starting',
    ]);
  });

  it('names a replaced task as gone and its replacement as new', () => {
    expect(taskChanges([t()], [t({ id: 'cccccccc', node: 'host-b', pid: 300 })])).toEqual(['web.1 (aaaaaaaa on host-a) is gone', 'web.1 (cccccccc on host-b) is new']);
  });
});
