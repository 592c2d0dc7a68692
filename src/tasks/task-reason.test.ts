import { describe, expect, it } from 'vitest';
import { exitReason, portList, taskMessage, type TaskMessageInput } from './task-reason.js';

const t0 = Date.parse('2026-01-01T00:00:00Z');
const base: TaskMessageInput = { state: 'running', restarts: 0, startedAt: new Date(t0).toISOString(), ready: true, ports: [{ protocol: 'tcp', target: 80 }], now: t0 + 1000 };

describe('exitReason', () => {
  it('names the exit status or the signal as task ls shows them', () => {
    expect(exitReason(1, null)).toBe('exit 1');
    expect(exitReason(3, null)).toBe('exit 3');
    expect(exitReason(null, 'SIGKILL')).toBe('killed by SIGKILL');
    expect(exitReason(127, null)).toBe('exit 127: command not found');
    expect(exitReason(125, null)).toMatch(/^exit 125: meshnet could not prepare/);
    expect(exitReason(null, null)).toMatch(/exit status unknown/);
  });
});

describe('portList', () => {
  it('prints tcp ports bare and udp ones suffixed, each once', () => {
    expect(portList([{ protocol: 'tcp', target: 80 }, { protocol: 'tcp', target: 80 }, { protocol: 'udp', target: 53 }])).toBe('80, 53/udp');
  });
});

describe('taskMessage', () => {
  it('says nothing for a running task that listens', () => {
    expect(taskMessage(base)).toBeUndefined();
  });

  it('gives a failed task its reason', () => {
    expect(taskMessage({ ...base, state: 'failed', startedAt: null, reason: 'exit 3' })).toBe('exit 3');
    expect(taskMessage({ ...base, state: 'failed', startedAt: null, reason: 'user "x" does not exist on this node: create it' })).toMatch(/^user "x" does not exist/);
    expect(taskMessage({ ...base, state: 'failed', startedAt: null })).toBe('failed');
  });

  it('says a task waiting for its restart is restarting, and why', () => {
    expect(taskMessage({ ...base, state: 'exited', startedAt: null, reason: 'killed by SIGKILL' })).toBe('killed by SIGKILL, restarting');
  });

  it('says a process that does not listen within the deadline is not listening, naming the ports', () => {
    const slow = { ...base, ready: false, now: t0 + 29_999 };
    expect(taskMessage(slow)).toBeUndefined();
    expect(taskMessage({ ...slow, now: t0 + 30_000 })).toBe('not listening on 80 after 30 s');
    expect(taskMessage({ ...slow, now: t0 + 5000, readyDeadlineMs: 5000, ports: [{ protocol: 'udp', target: 53 }] })).toBe('not listening on 53/udp after 5 s');
  });

  it('keeps why a restarted process restarted while it is not listening yet', () => {
    expect(taskMessage({ ...base, ready: false, restarts: 2, reason: 'exit 1' })).toBe('exit 1, restarted');
    expect(taskMessage({ ...base, ready: true, restarts: 2, reason: 'exit 1' })).toBeUndefined();
  });
});

describe('taskMessage with a health check or a restart policy', () => {
  const failed = { exitCode: 1, output: 'no file\n', start: new Date(t0).toISOString(), end: new Date(t0).toISOString() };
  it('says nothing of a healthy task, and why a listening one is not ready otherwise', () => {
    expect(taskMessage({ ...base, health: { status: 'healthy', failingStreak: 0, log: [] } })).toBeUndefined();
    expect(taskMessage({ ...base, health: { status: 'starting', failingStreak: 0, log: [] } })).toBe('health: starting');
    expect(taskMessage({ ...base, health: { status: 'starting', failingStreak: 1, log: [failed] } })).toBe('health: starting, 1 failed (health check exit 1: no file)');
    expect(taskMessage({ ...base, health: { status: 'unhealthy', failingStreak: 3, log: [failed] } })).toBe('unhealthy (health check exit 1: no file)');
    expect(taskMessage({ ...base, restarts: 1, reason: 'unhealthy (health check exit 1)', health: { status: 'starting', failingStreak: 0, log: [failed] } })).toBe('unhealthy (health check exit 1), restarted; health: starting');
  });

  it('calls a task left down after exit 0 complete', () => {
    expect(taskMessage({ ...base, state: 'shutdown', reason: 'exit 0', startedAt: null })).toBe('exit 0, complete');
  });
});
