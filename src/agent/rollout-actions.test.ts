import { describe, expect, it } from 'vitest';
import { rolloutActions } from './rollout-actions.js';
import type { ServiceRecord, TaskRecord } from '../model/records.js';
import { DEFAULT_UPDATE_CONFIG, type UpdateConfigRecord } from '../model/rollout-records.js';

const now = new Date('2025-01-01T00:00:10Z');

function service(order: UpdateConfigRecord['order'], over: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    name: 'web', networks: [], vips: {}, endpointMode: 'vip', ports: [], replicas: 2, command: ['new'], lb: { scheduler: 'rr' },
    version: 1,
    updateConfig: { ...DEFAULT_UPDATE_CONFIG, order, parallelism: 0 },
    updateStatus: { state: 'updating', startedAt: '2025-01-01T00:00:00.000Z', message: 'update in progress' },
    previousSpec: { version: 0, command: ['old'], networks: [], ports: [], replicas: 2 },
    ...over,
  };
}

const task = (slot: number, node: string, over: Partial<TaskRecord> = {}): TaskRecord => ({
  id: `task${slot}aaaaaaaa`, service: 'web', slot, node, addresses: {}, sandbox: '/run/x',
  desiredState: 'running', state: 'running', restarts: 0, updatedAt: '2025-01-01T00:00:00.000Z', ...over,
});
const ids = (ts: TaskRecord[]) => ts.map((t) => t.id);

describe('rolloutActions', () => {
  it('stop-first: our outdated tasks of the batch drain; other nodes act on theirs', () => {
    const tasks = [task(1, 'a'), task(2, 'b')];
    const a = rolloutActions({ nodes: [], services: [service('stop-first')], tasks }, 'a', now);
    expect([ids(a.drain), ids(a.start)]).toEqual([['task1aaaaaaaa'], []]);
    expect(ids(rolloutActions({ nodes: [], services: [service('stop-first')], tasks }, 'b', now).drain)).toEqual(['task2aaaaaaaa']);
  });

  it('start-first: our outdated tasks of the batch get successors and keep running', () => {
    const a = rolloutActions({ nodes: [], services: [service('start-first')], tasks: [task(1, 'a'), task(2, 'b')] }, 'a', now);
    expect([ids(a.start), ids(a.drain)]).toEqual([['task1aaaaaaaa'], []]);
  });

  it('start-first: our outdated task drains once its successor is ready, wherever the successor runs', () => {
    const next = task(1, 'a', { id: 'next1bbbbbbbb', specVersion: 1, replaces: 'task1aaaaaaaa' });
    const a = rolloutActions({ nodes: [], services: [service('start-first')], tasks: [task(1, 'a'), next, task(2, 'b', { specVersion: 1 })] }, 'a', now);
    expect([ids(a.drain), ids(a.start)]).toEqual([['task1aaaaaaaa'], []]);
  });

  it('a rollback is paced by the rollback order', () => {
    const back = service('stop-first', {
      updateStatus: { state: 'rollback_started', startedAt: '2025-01-01T00:00:00.000Z', message: 'm' },
      rollbackConfig: { ...DEFAULT_UPDATE_CONFIG, order: 'start-first', parallelism: 0 },
    });
    const a = rolloutActions({ nodes: [], services: [back], tasks: [task(1, 'a', { specVersion: 0 })] }, 'a', now);
    expect([ids(a.start), ids(a.drain)]).toEqual([['task1aaaaaaaa'], []]);
  });

  it('a global service rolls out over its nodes\' slots, one batch at a time', () => {
    const nodes = ['a', 'b', 'c'].map((id) => ({ id, name: id, underlayIp: '192.0.2.1', lease: '1' }));
    const global = service('stop-first', { mode: 'global', replicas: 0, updateConfig: { ...DEFAULT_UPDATE_CONFIG, parallelism: 1 } });
    const tasks = [task(1, 'a'), task(2, 'b'), task(3, 'c')];
    const drains = nodes.flatMap((n) => ids(rolloutActions({ nodes, services: [global], tasks }, n.id, now).drain));
    expect(drains).toEqual(['task1aaaaaaaa']);
    // Once slot 1 runs the new version, the next node's task goes.
    const after = [task(1, 'a', { id: 'new1aaaaaaaa', specVersion: 1, updatedAt: '2025-01-01T00:00:01.000Z' }), task(2, 'b'), task(3, 'c')];
    const next = nodes.flatMap((n) => ids(rolloutActions({ nodes, services: [global], tasks: after }, n.id, now).drain));
    expect(next).toEqual(['task2aaaaaaaa']);
  });
});
