import { describe, expect, it } from 'vitest';
import { rolloutDecision, runSpecOf, taskFailure, taskVersion } from './rolling-update.js';
import { rollbackSpec, withRollout } from './service-update-spec.js';
import type { NormalizedServiceSpec, ServiceRecord, TaskRecord } from './records.js';
import { DEFAULT_UPDATE_CONFIG, type UpdateConfigRecord } from './rollout-records.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function service(over: Partial<ServiceRecord> = {}, config: Partial<UpdateConfigRecord> = {}): ServiceRecord {
  return {
    name: 'web',
    networks: [],
    vips: {},
    endpointMode: 'vip',
    ports: [],
    replicas: 3,
    command: ['new'],
    lb: { scheduler: 'rr' },
    version: 2,
    updateConfig: { ...DEFAULT_UPDATE_CONFIG, ...config },
    updateStatus: { state: 'updating', startedAt: iso(T0), message: 'update in progress' },
    previousSpec: { version: 1, command: ['old'], networks: [], ports: [], replicas: 3 },
    ...over,
  };
}

function task(slot: number, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: `task${slot}aaaaaaaa`,
    service: 'web',
    slot,
    node: `n${slot}`,
    addresses: {},
    sandbox: '/run/x',
    desiredState: 'running',
    state: 'running',
    restarts: 0,
    updatedAt: iso(T0 - 60_000),
    specVersion: 1,
    ...over,
  };
}

const old3 = () => [task(1), task(2), task(3)];
const slots = (ts: TaskRecord[]) => ts.map((t) => t.slot);

describe('rolloutDecision: batches', () => {
  it('replaces one outdated task at a time with parallelism 1, in slot order', () => {
    expect(slots(rolloutDecision(service(), old3(), T0 + 1000).replace)).toEqual([1]);
  });

  it('replaces parallelism tasks at once, and all with parallelism 0', () => {
    expect(slots(rolloutDecision(service({}, { parallelism: 2 }), old3(), T0).replace)).toEqual([1, 2]);
    expect(slots(rolloutDecision(service({}, { parallelism: 0 }), old3(), T0).replace)).toEqual([1, 2, 3]);
  });

  it('waits while a slot of the batch is draining, being claimed, or its new task is not ready', () => {
    const draining = [task(1, { desiredState: 'shutdown' }), task(2), task(3)];
    expect(rolloutDecision(service(), draining, T0 + 1000).replace).toEqual([]);
    const claiming = [task(2), task(3)];
    expect(rolloutDecision(service(), claiming, T0 + 1000).replace).toEqual([]);
    const starting = [task(1, { specVersion: 2, state: 'starting', updatedAt: iso(T0 + 500) }), task(2), task(3)];
    expect(rolloutDecision(service(), starting, T0 + 1000).replace).toEqual([]);
  });

  it('counts in-flight slots against parallelism', () => {
    const ts = [task(1, { desiredState: 'shutdown' }), task(2), task(3)];
    expect(slots(rolloutDecision(service({}, { parallelism: 2 }), ts, T0 + 1000).replace)).toEqual([2]);
  });

  it('starts the next batch once the previous batch is ready', () => {
    const ts = [task(1, { specVersion: 2, updatedAt: iso(T0 + 2000) }), task(2), task(3)];
    expect(slots(rolloutDecision(service(), ts, T0 + 2500).replace)).toEqual([2]);
  });

  it('waits update-delay after the last new task became ready, and says when to look again', () => {
    const ts = [task(1, { specVersion: 2, updatedAt: iso(T0 + 2000) }), task(2), task(3)];
    const waiting = rolloutDecision(service({}, { delayMs: 10_000 }), ts, T0 + 5000);
    expect(waiting.replace).toEqual([]);
    expect(waiting.wakeAt).toBe(T0 + 12_000);
    expect(slots(rolloutDecision(service({}, { delayMs: 10_000 }), ts, T0 + 12_000).replace)).toEqual([2]);
  });

  it('does not delay the first batch because of tasks ready before the rollout started', () => {
    const ts = [task(1, { specVersion: 2, updatedAt: iso(T0 - 5000) }), task(2), task(3)];
    expect(slots(rolloutDecision(service({}, { delayMs: 10_000 }), ts, T0 + 1000).replace)).toEqual([2]);
  });

  it('completes when every slot runs the new version, and only then', () => {
    const done = [1, 2, 3].map((s) => task(s, { specVersion: 2 }));
    const d = rolloutDecision(service(), done, T0 + 9000);
    expect(d.replace).toEqual([]);
    expect(d.status).toMatchObject({ state: 'completed', message: 'update completed', completedAt: iso(T0 + 9000) });
    expect(rolloutDecision(service(), done.slice(0, 2), T0 + 9000).status).toBeUndefined();
  });

  it('ignores tasks of other services, external tasks and surplus slots', () => {
    const ts = [1, 2, 3].map((s) => task(s, { specVersion: 2 }));
    const others = [task(1, { service: 'api' }), task(100_001, { external: true }), task(4, { desiredState: 'shutdown' })];
    expect(rolloutDecision(service(), [...ts, ...others], T0).status?.state).toBe('completed');
  });

  it('does nothing when no rollout is active (never updated, paused, completed)', () => {
    expect(rolloutDecision(service({ updateStatus: undefined }), old3(), T0)).toEqual({ replace: [], retire: [] });
    for (const state of ['paused', 'completed', 'rollback_paused', 'rollback_completed'] as const) {
      expect(rolloutDecision(service({ updateStatus: { state, startedAt: iso(T0), message: '' } }), old3(), T0)).toEqual({ replace: [], retire: [] });
    }
  });

  it('takes legacy tasks (no specVersion) as version 0', () => {
    const legacy = [1, 2, 3].map((s) => task(s, { specVersion: undefined }));
    expect(taskVersion(legacy[0]!)).toBe(0);
    const s = service({ version: 1, previousSpec: { version: 0, command: ['old'], networks: [], ports: [], replicas: 3 } });
    expect(slots(rolloutDecision(s, legacy, T0).replace)).toEqual([1]);
  });

  it('gives every agent the same answer whatever the task order (the decision is a function of the snapshot)', () => {
    const ts = [task(3), task(1, { specVersion: 2, updatedAt: iso(T0 + 100) }), task(2)];
    const a = rolloutDecision(service(), ts, T0 + 1000);
    const b = rolloutDecision(service(), [...ts].reverse(), T0 + 1000);
    expect(a).toEqual(b);
    expect(slots(a.replace)).toEqual([2]);
  });
});

describe('rolloutDecision: failures', () => {
  const failedAt1 = () => [task(1, { specVersion: 2, state: 'failed', message: 'exit 1' }), task(2), task(3)];

  it('pauses on the first failure by default, naming the task', () => {
    const d = rolloutDecision(service(), failedAt1(), T0 + 1000);
    expect(d.replace).toEqual([]);
    expect(d.status).toMatchObject({ state: 'paused', failedTasks: ['task1aaaaaaaa'] });
    expect(d.status!.message).toContain('web.1 failed: exit 1');
  });

  it('counts a new task not ready within update-monitor, and says when its window ends', () => {
    const slow = [task(1, { specVersion: 2, state: 'starting', updatedAt: iso(T0) }), task(2), task(3)];
    const within = rolloutDecision(service({}, { monitorMs: 5000 }), slow, T0 + 4000);
    expect(within.status).toBeUndefined();
    expect(within.wakeAt).toBe(T0 + 5001);
    const after = rolloutDecision(service({}, { monitorMs: 5000 }), slow, T0 + 5001);
    expect(after.status?.state).toBe('paused');
    expect(after.status?.message).toContain('not ready within 5s');
  });

  it('counts a new task that crashed and was restarted', () => {
    const crashed = [task(1, { specVersion: 2, state: 'running', restarts: 1 }), task(2), task(3)];
    expect(rolloutDecision(service(), crashed, T0).status?.state).toBe('paused');
    expect(taskFailure(task(1), 5000, T0)).toBeUndefined();
  });

  it('with continue, records the failure and goes on with the next batch', () => {
    const d = rolloutDecision(service({}, { failureAction: 'continue' }), failedAt1(), T0 + 1000);
    expect(d.status).toMatchObject({ state: 'updating', failedTasks: ['task1aaaaaaaa'] });
    expect(slots(d.replace)).toEqual([2]);
  });

  it('with rollback, asks to roll back the failing version', () => {
    const d = rolloutDecision(service({}, { failureAction: 'rollback' }), failedAt1(), T0 + 1000);
    expect(d.rollback).toEqual({ failedVersion: 2, reason: expect.stringContaining('update rolled back: task web.1 failed') });
    expect(d.replace).toEqual([]);
  });

  it('tolerates failures up to max-failure-ratio', () => {
    const d = rolloutDecision(service({}, { maxFailureRatio: 0.34 }), failedAt1(), T0 + 1000);
    expect(d.status?.state).toBe('updating');
    expect(slots(d.replace)).toEqual([2]);
    const two = [task(1, { specVersion: 2, state: 'failed' }), task(2, { specVersion: 2, state: 'failed' }), task(3)];
    expect(rolloutDecision(service({}, { maxFailureRatio: 0.34 }), two, T0).status?.state).toBe('paused');
  });

  it('records a known failure once: an agent seeing it again writes nothing', () => {
    const s = service({ updateStatus: { state: 'updating', startedAt: iso(T0), message: '', failedTasks: ['task1aaaaaaaa'] } }, { failureAction: 'continue' });
    const d = rolloutDecision(s, failedAt1(), T0 + 1000);
    expect(d.status).toBeUndefined();
    expect(slots(d.replace)).toEqual([2]);
  });

  it('completes under continue with a failed task in place', () => {
    const s = service({ updateStatus: { state: 'updating', startedAt: iso(T0), message: '', failedTasks: ['task1aaaaaaaa'] } }, { failureAction: 'continue' });
    const ts = [task(1, { specVersion: 2, state: 'failed' }), task(2, { specVersion: 2 }), task(3, { specVersion: 2 })];
    expect(rolloutDecision(s, ts, T0).status?.state).toBe('completed');
  });

  it('pauses a failing rollback as rollback_paused, with the rollback config', () => {
    const s = service({ updateStatus: { state: 'rollback_started', startedAt: iso(T0), message: '' }, rollbackConfig: { ...DEFAULT_UPDATE_CONFIG, parallelism: 3 } });
    expect(slots(rolloutDecision(s, old3(), T0).replace)).toEqual([1, 2, 3]);
    expect(rolloutDecision(s, [task(1, { specVersion: 2, state: 'failed' }), task(2), task(3)], T0).status?.state).toBe('rollback_paused');
  });
});

describe('agent restart mid-rollout', () => {
  it('resumes from the store alone: the same snapshot gives the same next step', () => {
    // Slot 1 done, slot 2 draining: a fresh agent (no memory) decides exactly as the one that stopped.
    const snapshot = [task(1, { specVersion: 2, updatedAt: iso(T0 + 1000) }), task(2, { desiredState: 'shutdown' }), task(3)];
    const before = rolloutDecision(service(), snapshot, T0 + 3000);
    const after = rolloutDecision(structuredClone(service()), structuredClone(snapshot), T0 + 3000);
    expect(after).toEqual(before);
    expect(after.replace).toEqual([]);
    const drained = [task(1, { specVersion: 2 }), task(2, { specVersion: 2, updatedAt: iso(T0 + 4000) }), task(3)];
    expect(slots(rolloutDecision(service(), drained, T0 + 4500).replace)).toEqual([3]);
  });
});

describe('runSpecOf', () => {
  it('runs the previous spec for tasks at the previous version, the current one otherwise', () => {
    const s = service({ previousSpec: { version: 1, command: ['old'], env: { A: '1' }, networks: [], ports: [], replicas: 3, user: 'nobody' } });
    expect(runSpecOf(s, { specVersion: 1 })).toEqual({ command: ['old'], env: { A: '1' }, user: 'nobody' });
    expect(runSpecOf(s, { specVersion: 2 }).command).toEqual(['new']);
    expect(runSpecOf(s, { specVersion: 0 }).command).toEqual(['new']);
    expect(runSpecOf(service({ previousSpec: undefined }), {}).command).toEqual(['new']);
  });
});

describe('withRollout and rollbackSpec', () => {
  const base = service({ version: undefined, updateStatus: undefined, previousSpec: undefined, updateConfig: undefined, command: ['old'] });
  const spec = (over: Partial<NormalizedServiceSpec>): NormalizedServiceSpec => ({ ...(base as unknown as NormalizedServiceSpec), ...over });
  const now = new Date(T0);

  it('makes a new version when what tasks run changes, keeping the old spec', () => {
    const out = withRollout(base, spec({ command: ['new'] }), {}, now);
    expect(out.version).toBe(1);
    expect(out.previousSpec).toMatchObject({ version: 0, command: ['old'] });
    expect(out.updateStatus).toMatchObject({ state: 'updating', startedAt: iso(T0) });
  });

  it('keeps the version for changes that need no new task (replicas, ports)', () => {
    const out = withRollout(base, spec({ replicas: 5 }), {}, now);
    expect(out.version).toBeUndefined();
    expect(out.updateStatus).toBeUndefined();
  });

  it('--force makes a new version with no other change; env and networks changes do too', () => {
    expect(withRollout(base, spec({}), { force: true }, now)).toMatchObject({ version: 1, forceUpdate: 1 });
    expect(withRollout(base, spec({ env: { A: 'b' } }), {}, now).version).toBe(1);
    expect(withRollout(base, spec({ networks: ['appnet'] }), {}, now).version).toBe(1);
  });

  it('merges update flags over the stored config and Docker defaults', () => {
    const out = withRollout(base, spec({}), { updateConfig: { parallelism: 2 } }, now);
    expect(out.updateConfig).toEqual({ ...DEFAULT_UPDATE_CONFIG, parallelism: 2 });
  });

  it('resumes a paused update with an update that changes no task', () => {
    const paused = service({ updateStatus: { state: 'paused', startedAt: iso(T0), message: 'x', failedTasks: ['a'] } });
    const out = withRollout(paused, spec({ command: ['new'] }), {}, now);
    expect(out.updateStatus).toEqual({ state: 'updating', startedAt: iso(T0), message: 'update resumed' });
    expect(out.version).toBe(2);
  });

  it('rolls back by swapping specs, version numbers included, and never reuses a version', () => {
    const s = service();
    const back = rollbackSpec(s, 'manually requested rollback', now);
    expect(back).toMatchObject({ version: 1, command: ['old'], previousSpec: { version: 2, command: ['new'] }, updateStatus: { state: 'rollback_started' } });
    const again = withRollout({ ...s, ...back } as ServiceRecord, spec({ command: ['third'] }), {}, now);
    expect(again.version).toBe(3);
  });

  it('an automatic rollback of a version that is no longer current is refused, so it happens once', () => {
    expect(() => rollbackSpec(service(), 'x', now, 1)).toThrow(/already rolled back/);
    expect(() => rollbackSpec(base, 'x', now)).toThrow(/no previous spec/);
  });
});

describe('rolloutDecision: start-first', () => {
  const sf = (config: Partial<UpdateConfigRecord> = {}, over: Partial<ServiceRecord> = {}) => service(over, { order: 'start-first', ...config });
  const next = (slot: number, over: Partial<TaskRecord> = {}) =>
    task(slot, { id: `next${slot}bbbbbbbb`, specVersion: 2, state: 'starting', updatedAt: iso(T0 + 500), replaces: `task${slot}aaaaaaaa`, ...over });
  const ids = (ts: TaskRecord[]) => ts.map((t) => t.id);

  it('names the outdated tasks whose successors start, batch by batch, as stop-first does', () => {
    expect(slots(rolloutDecision(sf(), old3(), T0 + 1000).replace)).toEqual([1]);
    expect(slots(rolloutDecision(sf({ parallelism: 0 }), old3(), T0 + 1000).replace)).toEqual([1, 2, 3]);
    expect(rolloutDecision(sf(), old3(), T0 + 1000).retire).toEqual([]);
  });

  it('keeps the outdated task running while its successor is not ready, and waits for it', () => {
    const d = rolloutDecision(sf(), [task(1), next(1), task(2), task(3)], T0 + 1000);
    expect(d.replace).toEqual([]);
    expect(d.retire).toEqual([]);
    expect(d.status).toBeUndefined();
    expect(d.wakeAt).toBe(T0 + 500 + DEFAULT_UPDATE_CONFIG.monitorMs + 1);
  });

  it('drains the outdated task once its successor is ready, and holds the batch until it is gone', () => {
    const d = rolloutDecision(sf(), [task(1), next(1, { state: 'running', updatedAt: iso(T0 + 900) }), task(2), task(3)], T0 + 1000);
    expect(ids(d.retire)).toEqual(['task1aaaaaaaa']);
    expect(d.replace).toEqual([]);
    const draining = rolloutDecision(sf(), [task(1, { desiredState: 'shutdown' }), next(1, { state: 'running' }), task(2), task(3)], T0 + 1000);
    expect(draining.retire).toEqual([]);
    expect(draining.replace).toEqual([]);
  });

  it('goes on once the successor took the slot (the outdated task was removed)', () => {
    const promoted = task(1, { id: 'next1bbbbbbbb', specVersion: 2, updatedAt: iso(T0 + 900) });
    expect(slots(rolloutDecision(sf(), [promoted, task(2), task(3)], T0 + 1000).replace)).toEqual([2]);
  });

  it('never lowers the running count: a task drains only when its slot has a ready successor', () => {
    // Every combination of states of three slots in the middle of a start-first rollout with parallelism 0.
    const states = ['none', 'starting', 'running'] as const;
    for (const a of states) for (const b of states) for (const c of states) {
      const ts = [task(1), task(2), task(3)];
      [a, b, c].forEach((st, i) => st !== 'none' && ts.push(next(i + 1, { state: st })));
      const d = rolloutDecision(sf({ parallelism: 0 }), ts, T0 + 1000);
      for (const t of d.retire) expect(ts.some((s) => s.replaces === t.id && s.state === 'running')).toBe(true);
      expect(slots(d.replace)).toEqual([a, b, c].flatMap((st, i) => (st === 'none' ? [i + 1] : [])));
    }
  });

  it('counts a failing successor and pauses with the outdated task still running', () => {
    const d = rolloutDecision(sf(), [task(1), next(1, { state: 'failed', message: 'exit 1' }), task(2), task(3)], T0 + 1000);
    expect(d.status?.state).toBe('paused');
    expect(d.status?.failedTasks).toEqual(['next1bbbbbbbb']);
    expect(d.retire).toEqual([]);
  });

  it('counts a successor not ready within update-monitor', () => {
    const d = rolloutDecision(sf({ monitorMs: 1000 }), [task(1), next(1, { updatedAt: iso(T0) }), task(2), task(3)], T0 + 5000);
    expect(d.status?.message).toMatch(/web\.1 was not ready within 1s/);
  });

  it('with continue, drains the outdated task of a failed successor and moves on once it is gone', () => {
    const failed = next(1, { state: 'failed' });
    const status = { state: 'updating' as const, startedAt: iso(T0), message: 'x', failedTasks: [failed.id] };
    const d = rolloutDecision(sf({ failureAction: 'continue' }, { updateStatus: status }), [task(1), failed, task(2), task(3)], T0 + 1000);
    expect(ids(d.retire)).toEqual(['task1aaaaaaaa']);
    expect(d.replace).toEqual([]);
    const after = rolloutDecision(sf({ failureAction: 'continue' }, { updateStatus: status }), [{ ...failed, replaces: undefined } as TaskRecord, task(2), task(3)], T0 + 1000);
    expect(slots(after.replace)).toEqual([2]);
  });

  it('completes only when no successor is left beside an outdated task', () => {
    const done = [1, 2, 3].map((s) => task(s, { id: `next${s}bbbbbbbb`, specVersion: 2 }));
    expect(rolloutDecision(sf(), done, T0 + 1000).status?.state).toBe('completed');
    expect(rolloutDecision(sf(), [task(1, { desiredState: 'shutdown' }), next(1, { state: 'running' }), ...done.slice(1)], T0 + 1000).status).toBeUndefined();
  });

  it('retires successors of a superseded version (rolled back), also once the rollout is over', () => {
    // Rolled back: the service is at version 1 again; the successors at 2 go, the old tasks are current.
    const rolledBack = service({ version: 1, updateStatus: { state: 'rollback_started', startedAt: iso(T0), message: 'manually requested rollback' }, rollbackConfig: { ...DEFAULT_UPDATE_CONFIG, order: 'start-first' } });
    const ts = [task(1), next(1, { state: 'running' }), task(2), next(2), task(3)];
    const d = rolloutDecision(rolledBack, ts, T0 + 1000);
    expect(ids(d.retire).sort()).toEqual(['next1bbbbbbbb', 'next2bbbbbbbb']);
    expect(d.replace).toEqual([]);
    expect(d.status).toBeUndefined();
    const paused = service({ version: 1, updateStatus: { state: 'rollback_paused', startedAt: iso(T0), message: 'x' } });
    expect(ids(rolloutDecision(paused, ts, T0 + 1000).retire).sort()).toEqual(['next1bbbbbbbb', 'next2bbbbbbbb']);
    expect(rolloutDecision(rolledBack, [task(1), task(2), task(3)], T0 + 1000).status?.state).toBe('rollback_completed');
  });

  it('paces a rollback by the rollback order', () => {
    const back = service({ version: 1, updateStatus: { state: 'rollback_started', startedAt: iso(T0), message: 'm' }, rollbackConfig: { ...DEFAULT_UPDATE_CONFIG, order: 'start-first', parallelism: 0 } });
    const newer = [1, 2, 3].map((s) => task(s, { specVersion: 2 }));
    expect(slots(rolloutDecision(back, newer, T0 + 1000).replace)).toEqual([1, 2, 3]);
  });

  it('gives every agent the same answer whatever the task order', () => {
    const ts = [task(1), next(1, { state: 'running' }), task(2), next(2), task(3)];
    const a = rolloutDecision(sf({ parallelism: 0 }), ts, T0 + 1000);
    const b = rolloutDecision(sf({ parallelism: 0 }), [...ts].reverse(), T0 + 1000);
    expect([ids(a.retire), slots(a.replace)]).toEqual([ids(b.retire), slots(b.replace)]);
  });
});
