import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { Cluster, type NodeRegistration } from './cluster.js';
import * as keys from './keys.js';
import type { TaskRecord } from './records.js';
import { appendFinished, decodeTaskHistory, finishedTask, MAX_FINISHED_PER_SLOT, readServiceHistory, restartError, type FinishedTask } from './task-history.js';

const task = (over: Partial<TaskRecord> = {}): TaskRecord => ({
  id: 'aaaaaaaaaaaa',
  service: 'web',
  slot: 1,
  node: 'host-a',
  addresses: {},
  sandbox: '/run/meshnet/netns/t-aaaaaaaaaaaa',
  desiredState: 'running',
  state: 'running',
  restarts: 0,
  updatedAt: '2026-01-01T00:00:00.000Z',
  ...over,
});
const at = new Date('2026-01-01T00:05:00Z');

describe('history entries', () => {
  it('say how a task ended: failed with its error, or shut down', () => {
    expect(finishedTask(task({ state: 'failed', message: 'exit 3' }), 'removed', at)).toEqual({
      id: 'aaaaaaaaaaaa', node: 'host-a', state: 'failed', error: 'exit 3', restarts: 0, how: 'removed', endedAt: '2026-01-01T00:05:00.000Z',
    });
    expect(finishedTask(task({ desiredState: 'shutdown', message: 'draining for 5s' }), 'removed', at)).not.toHaveProperty('error');
    expect(finishedTask(task({ desiredState: 'shutdown' }), 'removed', at).state).toBe('shutdown');
    expect(finishedTask(task({ restarts: 2 }), 'restarted', at, 'exit 1')).toMatchObject({ state: 'failed', error: 'exit 1', restarts: 2, how: 'restarted' });
    expect(finishedTask(task({ state: 'failed', message: 'x'.repeat(2000) }), 'replaced', at).error).toHaveLength(512);
  });

  it('take a restart’s reason from the message reported with it', () => {
    expect(restartError({ message: 'exit 1, restarting' }, undefined)).toBe('exit 1');
    expect(restartError({ state: 'running', message: 'killed by SIGKILL, restarted' }, 'exit 2, restarting')).toBe('killed by SIGKILL');
    expect(restartError({ state: 'failed', message: 'exit 3' }, undefined)).toBe('exit 3');
    expect(restartError({ state: 'running' }, 'exit 2, restarting')).toBe('exit 2');
    expect(restartError({ state: 'running', message: 'not listening on 80 after 30 s' }, undefined)).toBeUndefined();
    expect(restartError({}, undefined)).toBeUndefined();
  });

  it('are kept newest first and capped at Docker’s retention (5 tasks a slot, the current one included)', () => {
    expect(MAX_FINISHED_PER_SLOT).toBe(4);
    let h: FinishedTask[] = [];
    for (let i = 0; i < 10; i++) h = appendFinished(h, finishedTask(task({ id: `task0000000${i}` }), 'removed', at));
    expect(h.map((e) => e.id)).toEqual(['task00000009', 'task00000008', 'task00000007', 'task00000006']);
  });

  it('decode leniently: a bad entry or value is dropped, never an error', () => {
    const good = finishedTask(task(), 'removed', at);
    expect(decodeTaskHistory(JSON.stringify([good, { id: 5 }, { ...good, future: 'kept' }]))).toEqual([good, { ...good, future: 'kept' }]);
    expect(decodeTaskHistory('not json')).toEqual([]);
    expect(decodeTaskHistory('{"a":1}')).toEqual([]);
    expect(decodeTaskHistory(undefined)).toEqual([]);
  });
});

describe('history in the cluster model', () => {
  let dir: string;
  let store: SqliteKvStore;
  let cluster: Cluster;
  let node: NodeRegistration;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshnet-history-'));
    store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
    cluster = new Cluster(store, { now: () => at, addressQuarantineSeconds: 0 });
    node = await cluster.registerNode({ id: 'host-a', name: 'host-a', underlayIp: '192.168.0.1' });
    await cluster.createNetwork({ name: 'front' });
    await cluster.createService({ name: 'web', networks: ['front'], replicas: 2, command: ['x'] });
  });

  afterEach(async () => {
    await node.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a removed task leaves an entry in its slot, capped at four', async () => {
    for (let i = 0; i < 6; i++) {
      const t = await cluster.claimTask('web', 1, 'host-a');
      await cluster.updateTaskState('web', 1, t.id, { state: 'failed', message: `exit ${i}` });
      expect(await cluster.removeTask('web', 1, t.id)).toBe(true);
    }
    const history = (await readServiceHistory(store, 'web')).get(1)!;
    expect(history.map((e) => e.error)).toEqual(['exit 5', 'exit 4', 'exit 3', 'exit 2']);
    expect(history.every((e) => e.state === 'failed' && e.node === 'host-a' && e.how === 'removed')).toBe(true);
  });

  it('a restart in place leaves an entry with the reason; other state reports leave none', async () => {
    const t = await cluster.claimTask('web', 2, 'host-a');
    await cluster.updateTaskState('web', 2, t.id, { state: 'running' });
    await cluster.updateTaskState('web', 2, t.id, { state: 'starting', restarts: 1, message: 'exit 1, restarting' });
    await cluster.updateTaskState('web', 2, t.id, { state: 'starting', restarts: 1, message: 'exit 1, restarting' });
    await cluster.updateTaskState('web', 2, t.id, { state: 'failed', restarts: 3, message: 'exit 1' });
    const history = (await readServiceHistory(store, 'web')).get(2)!;
    expect(history.map((e) => [e.id, e.state, e.error, e.restarts, e.how])).toEqual([
      [t.id, 'failed', 'exit 1', 1, 'restarted'],
      [t.id, 'failed', 'exit 1', 0, 'restarted'],
    ]);
  });

  it('a restart reported after the process already runs again takes its reason from lastExit', async () => {
    const t = await cluster.claimTask('web', 2, 'host-a');
    await cluster.updateTaskState('web', 2, t.id, { state: 'running' });
    // The agent looked only once the restarted process listened: no "restarting" message to read the reason from.
    await cluster.updateTaskState('web', 2, t.id, { state: 'running', restarts: 1, lastExit: 'exit 1' });
    const history = (await readServiceHistory(store, 'web')).get(2)!;
    expect(history.map((e) => [e.error, e.how])).toEqual([['exit 1', 'restarted']]);
    expect((await cluster.listTasks({ service: 'web' }))[0]).not.toHaveProperty('lastExit');
  });

  it('removing the service removes its histories, and none is written for it afterwards', async () => {
    const t = await cluster.claimTask('web', 1, 'host-a');
    await cluster.removeTask('web', 1, t.id);
    await cluster.claimTask('web', 1, 'host-a');
    expect((await store.range(keys.serviceTaskHistoryPrefix('web'))).kvs).toHaveLength(1);
    await cluster.removeService('web');
    expect((await store.range(keys.TASK_HISTORY)).kvs).toEqual([]);
    // History keys are no task records: a snapshot neither lists nor reports them.
    const snap = await cluster.snapshot();
    expect(snap.tasks).toEqual([]);
    expect(snap.invalid).toEqual([]);
  });
});
