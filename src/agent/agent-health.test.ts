import { describe, expect, it } from 'vitest';
import { AgentHealth, livenessVerdict, readinessVerdict } from './agent-health.js';
import type { AgentViews } from './agent-observer.js';
import type { TargetStatus } from './applied-cache.js';

describe('livenessVerdict', () => {
  const base = { startedAt: 0, maxPassAgeSeconds: 60 };
  it('is ok while passes finish within the limit, and since start before the first one', () => {
    expect(livenessVerdict({ ...base, now: 59_000, lastPassAt: null })).toMatchObject({ status: 200, body: { status: 'ok', lastPassSecondsAgo: null } });
    expect(livenessVerdict({ ...base, now: 100_000, lastPassAt: 90_000 })).toMatchObject({ status: 200, body: { lastPassSecondsAgo: 10 } });
  });
  it('is 503 with the age and the limit once no pass finished for longer', () => {
    const v = livenessVerdict({ ...base, now: 200_000, lastPassAt: 100_000 });
    expect(v.status).toBe(503);
    expect(v.body.reason).toMatch(/no reconcile pass has finished for 100 s \(limit 60 s/);
    expect(livenessVerdict({ ...base, now: 61_000, lastPassAt: null }).body.reason).toMatch(/since the agent started/);
  });
});

describe('readinessVerdict', () => {
  const ok = { started: true, firstPassDone: true, storeConnected: true, failing: [] };
  it('is ready only after the first pass, with the store up and nothing failing', () => {
    expect(readinessVerdict(ok)).toEqual({ status: 200, body: { status: 'ready' } });
    expect(readinessVerdict({ ...ok, started: false }).body.status).toBe('starting');
    expect(readinessVerdict({ ...ok, firstPassDone: false }).body.reason).toMatch(/first reconcile pass/);
    expect(readinessVerdict({ ...ok, storeConnected: false })).toMatchObject({ status: 503, body: { status: 'store_disconnected' } });
  });
  it('lists the failing targets with their errors (at most 20)', () => {
    const failing: TargetStatus[] = Array.from({ length: 25 }, (_, i) => ({ surface: 'lb', target: `/ns/${i}`, error: 'nft: EPERM', failingSince: '2026-12-01T00:00:00.000Z' }));
    const v = readinessVerdict({ ...ok, failing });
    expect(v.status).toBe(503);
    expect(v.body.reason).toMatch(/^25 target\(s\) fail/);
    expect(v.body['failing']).toHaveLength(20);
    expect((v.body['failing'] as unknown[])[0]).toEqual({ surface: 'lb', target: '/ns/0', error: 'nft: EPERM', since: '2026-12-01T00:00:00.000Z' });
  });
});

describe('AgentHealth', () => {
  it('follows start and passes on its clock', () => {
    let now = 1000;
    let connected = true;
    const h = new AgentHealth(5, () => now);
    expect(h.readiness().body.status).toBe('starting');
    const views = { failingTargets: () => [], storeConnected: () => connected, storeRevision: () => 1, tasks: () => [], dnsCounters: async () => ({ queries: 0, answers: [], dropped: 0 }) } satisfies AgentViews;
    h.started(views);
    expect(h.readiness().body.reason).toMatch(/first reconcile pass/);
    h.passFinished({} as never);
    expect(h.readiness().status).toBe(200);
    connected = false;
    expect(h.readiness().status).toBe(503);
    now += 6000;
    expect(h.liveness().status).toBe(503);
    h.passFinished({} as never);
    expect(h.liveness().status).toBe(200);
  });
});
