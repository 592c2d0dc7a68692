import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { Cluster, type NodeRegistration } from './cluster.js';
import { TaskReplacedError } from './model-errors.js';
import * as keys from './keys.js';
import type { TaskRecord } from './records.js';
import { taskRecord } from '../cli/commands/task-record.test-data.js';
import { isSuccessor, positionOf, promoted, removalOf, taskRecordKey } from './successor-task.js';

const task = (id: string, over: Partial<TaskRecord> = {}): TaskRecord => taskRecord('web', 2, { id, ...over });
const old = task('oldoldold1');
const next = task('newnewnew1', { replaces: 'oldoldold1', specVersion: 1 });

describe('successor records (pure)', () => {
  it('live at <slot>/next until they take the slot, at its key', () => {
    expect(isSuccessor(old)).toBe(false);
    expect(isSuccessor(next)).toBe(true);
    expect(taskRecordKey(old)).toBe('/meshnet/tasks/web/2');
    expect(taskRecordKey(next)).toBe('/meshnet/tasks/web/2/next');
    expect(taskRecordKey(promoted(next))).toBe('/meshnet/tasks/web/2');
    expect(promoted(next)).not.toHaveProperty('replaces');
    expect({ ...promoted(next), replaces: next.replaces }).toEqual(next);
  });

  it('are found by id among the slot records', () => {
    expect(positionOf({ primary: old, successor: next }, old.id)).toBe('primary');
    expect(positionOf({ primary: old, successor: next }, next.id)).toBe('successor');
    expect(positionOf({ primary: old }, next.id)).toBeUndefined();
  });

  it('take the slot when the task they replace is removed, and only then', () => {
    expect(removalOf({ primary: old, successor: next }, old.id)).toEqual({ remove: 'primary', promote: true });
    expect(removalOf({ primary: old, successor: next }, next.id)).toEqual({ remove: 'successor', promote: false });
    expect(removalOf({ primary: old }, old.id)).toEqual({ remove: 'primary', promote: false });
    expect(removalOf({ primary: old, successor: next })).toEqual({ remove: 'primary', promote: true });
    expect(removalOf({ successor: next })).toEqual({ remove: 'successor', promote: false });
    expect(removalOf({ primary: old }, 'someoneelse')).toBeUndefined();
    expect(removalOf({})).toBeUndefined();
  });
});

describe('successors in the cluster model', () => {
  let dir: string;
  let store: SqliteKvStore;
  let cluster: Cluster;
  let node: NodeRegistration;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshnet-successor-'));
    store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
    cluster = new Cluster(store, { addressQuarantineSeconds: 0 });
    node = await cluster.registerNode({ id: 'host-a', name: 'host-a', underlayIp: '192.168.0.1' });
    await cluster.createNetwork({ name: 'front' });
    await cluster.createService({ name: 'web', networks: ['front'], replicas: 2, command: ['x'] });
  });

  afterEach(async () => {
    await node.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('run beside the old task with their own address, report state, and take the slot in one step when it goes', async () => {
    const first = await cluster.claimTask('web', 1, 'host-a');
    await cluster.updateService('web', { command: ['y'] });
    const succ = await cluster.claimSuccessorTask('web', 1, 'host-a', first.id);
    expect(succ).toMatchObject({ slot: 1, replaces: first.id, specVersion: 1, state: 'new' });
    expect(succ.addresses['front']!.ip).not.toBe(first.addresses['front']!.ip);
    // A second claim (another pass, another agent) finds the same successor.
    expect((await cluster.claimSuccessorTask('web', 1, 'host-a', first.id)).id).toBe(succ.id);
    expect((await cluster.listTasks({ service: 'web' })).map((t) => t.id).sort()).toEqual([first.id, succ.id].sort());
    expect((await cluster.snapshot()).tasks.map((t) => t.id).sort()).toEqual([first.id, succ.id].sort());

    expect((await cluster.updateTaskState('web', 1, succ.id, { state: 'running' })).state).toBe('running');
    await cluster.updateTaskState('web', 1, first.id, { desiredState: 'shutdown' });
    expect(await cluster.removeTask('web', 1, first.id)).toBe(true);
    const left = await cluster.listTasks({ service: 'web' });
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ id: succ.id, state: 'running', specVersion: 1 });
    expect(left[0]!.replaces).toBeUndefined();
    expect(await store.get(keys.taskSuccessorKey('web', 1))).toBeUndefined();
    // Taken over: reports now land at the slot's key.
    await cluster.updateTaskState('web', 1, succ.id, { state: 'starting' });
    expect((await store.get(keys.taskKey('web', 1)))!.value).toContain('"starting"');
  });

  it('are refused for a task that no longer holds its slot', async () => {
    await cluster.claimTask('web', 1, 'host-a');
    await expect(cluster.claimSuccessorTask('web', 1, 'host-a', 'notthetask1')).rejects.toBeInstanceOf(TaskReplacedError);
  });

  it('of a superseded version are removed alone, leaving the old task in its slot', async () => {
    const first = await cluster.claimTask('web', 1, 'host-a');
    await cluster.updateService('web', { command: ['y'] });
    const succ = await cluster.claimSuccessorTask('web', 1, 'host-a', first.id);
    expect(await cluster.removeTask('web', 1, succ.id)).toBe(true);
    expect((await cluster.listTasks({ service: 'web' })).map((t) => t.id)).toEqual([first.id]);
  });

  it('go with their slot when another node claims it, and with their service', async () => {
    const first = await cluster.claimTask('web', 1, 'host-a');
    await cluster.updateService('web', { command: ['y'] });
    await cluster.claimSuccessorTask('web', 1, 'host-a', first.id);
    const b = await cluster.registerNode({ id: 'host-b', name: 'host-b', underlayIp: '192.168.0.2' });
    try {
      // Agents claim a slot whose holder is no longer live: the new task replaces both records.
      const taken = await cluster.claimTask('web', 1, 'host-b');
      expect((await cluster.listTasks({ service: 'web' })).map((t) => t.id)).toEqual([taken.id]);
      await cluster.claimSuccessorTask('web', 1, 'host-b', taken.id);
      await cluster.removeService('web');
      expect((await store.range(keys.TASKS)).kvs).toEqual([]);
    } finally {
      await b.close();
    }
  });
});
