import { describe, expect, it } from 'vitest';
import { decideAfterTaskExit, DEFAULT_RESTART_POLICY, restartPolicySchema, validateRestartPolicy, type ExitOutcome, type RestartPolicy, type ServiceRestartPolicy } from './restart-policy.js';

/** Replays exits at the given times through the policy, as the supervisor does. */
function replay(policy: RestartPolicy, times: number[], service?: ServiceRestartPolicy, outcome: ExitOutcome = 'failure') {
  let crashes: number[] = [];
  return times.map((t) => {
    const d = decideAfterTaskExit(policy, service, crashes, t, outcome);
    crashes = d.crashes;
    return d;
  });
}

const delays = (ds: ReturnType<typeof replay>) => ds.map((d) => (d.action === 'restart' ? d.delayMs : d.final));

describe('decideAfterTaskExit without a service policy (meshnet\'s default)', () => {
  it('backs off 100, 200, 400, 800 ms and fails at the fifth exit within the window', () => {
    expect(delays(replay(DEFAULT_RESTART_POLICY, [0, 1_000, 2_000, 3_000, 4_000]))).toEqual([100, 200, 400, 800, 'failed']);
  });

  it('restarts a process that exits 0 too, and calls the fifth such exit complete', () => {
    expect(delays(replay(DEFAULT_RESTART_POLICY, [0, 1, 2, 3, 4], undefined, 'success'))).toEqual([100, 200, 400, 800, 'complete']);
  });

  it('caps the delay at maxDelayMs', () => {
    const policy = { ...DEFAULT_RESTART_POLICY, maxCrashes: 10 };
    expect(delays(replay(policy, [0, 1, 2, 3, 4, 5, 6, 7, 8]))).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it('forgets exits older than the window, so rare crashes never fail the task', () => {
    const times = Array.from({ length: 20 }, (_, i) => i * 61_000);
    const decisions = replay(DEFAULT_RESTART_POLICY, times);
    expect(decisions.every((d) => d.action === 'restart' && d.delayMs === 100)).toBe(true);
    expect(decisions.at(-1)!.crashes).toEqual([19 * 61_000]);
  });

  it('counts only exits strictly inside the window', () => {
    const policy = { ...DEFAULT_RESTART_POLICY, maxCrashes: 2, windowMs: 1_000 };
    expect(decideAfterTaskExit(policy, undefined, [0], 1_000, 'failure')).toMatchObject({ action: 'restart', delayMs: 100, crashes: [1_000] });
    expect(decideAfterTaskExit(policy, undefined, [1], 1_000, 'failure')).toMatchObject({ action: 'stop', final: 'failed', crashes: [1, 1_000] });
  });

  it('fails at once when maxCrashes is 1', () => {
    expect(decideAfterTaskExit({ ...DEFAULT_RESTART_POLICY, maxCrashes: 1 }, undefined, [], 5, 'failure').action).toBe('stop');
  });

  it('ignores recorded exits from the future (a clock step backwards)', () => {
    expect(decideAfterTaskExit(DEFAULT_RESTART_POLICY, undefined, [10_000, 20_000], 5_000, 'failure')).toMatchObject({ action: 'restart', delayMs: 100, crashes: [5_000] });
  });

  it('an empty service policy is the default', () => {
    expect(replay(DEFAULT_RESTART_POLICY, [0, 1, 2, 3, 4], {})).toEqual(replay(DEFAULT_RESTART_POLICY, [0, 1, 2, 3, 4]));
  });
});

describe('decideAfterTaskExit with Docker\'s flags', () => {
  it('condition none leaves every exit down: complete on 0, failed otherwise', () => {
    expect(decideAfterTaskExit(DEFAULT_RESTART_POLICY, { condition: 'none' }, [], 0, 'success')).toMatchObject({ action: 'stop', final: 'complete', why: 'not restarted (--restart-condition none)' });
    expect(decideAfterTaskExit(DEFAULT_RESTART_POLICY, { condition: 'none' }, [], 0, 'failure')).toMatchObject({ action: 'stop', final: 'failed' });
  });

  it('on-failure completes on exit 0 and restarts a failure (an unhealthy kill is one)', () => {
    expect(decideAfterTaskExit(DEFAULT_RESTART_POLICY, { condition: 'on-failure' }, [], 0, 'success')).toMatchObject({ action: 'stop', final: 'complete' });
    expect(decideAfterTaskExit(DEFAULT_RESTART_POLICY, { condition: 'on-failure' }, [], 0, 'failure')).toMatchObject({ action: 'restart', delayMs: 100 });
  });

  it('a fixed delay replaces the doubling one', () => {
    expect(delays(replay(DEFAULT_RESTART_POLICY, [0, 1, 2, 3], { delayMs: 5_000, maxAttempts: 0 }))).toEqual([5_000, 5_000, 5_000, 5_000]);
  });

  it('max attempts N allows N restarts for ever when no window is given, then leaves the task down', () => {
    const ds = replay(DEFAULT_RESTART_POLICY, [0, 100_000, 200_000, 300_000], { maxAttempts: 3 });
    expect(delays(ds)).toEqual([100, 100, 100, 'failed']);
    expect(ds[3]!.why).toBe('3 of 3 restarts used ever: not restarting');
  });

  it('max attempts counts within --restart-window when given', () => {
    expect(delays(replay(DEFAULT_RESTART_POLICY, [0, 100, 20_000, 20_100], { maxAttempts: 1, windowMs: 10_000 }))).toEqual([100, 'failed', 100, 'failed']);
  });

  it('max attempts 0 is unlimited: a crash loop is never given up', () => {
    const ds = replay(DEFAULT_RESTART_POLICY, Array.from({ length: 200 }, (_, i) => i), { maxAttempts: 0 });
    expect(ds.every((d) => d.action === 'restart')).toBe(true);
    expect(ds.at(-1)!.crashes.length).toBeLessThanOrEqual(64);
    expect(ds.at(-1)).toMatchObject({ delayMs: 5_000, why: 'restarting in 5000 ms (unlimited restarts)' });
  });

  it('a window alone keeps the 5-exit guard, counted in that window', () => {
    expect(delays(replay(DEFAULT_RESTART_POLICY, [0, 1, 2, 3, 4], { windowMs: 2 }))).toEqual([100, 200, 200, 200, 200]);
  });
});

describe('restartPolicySchema', () => {
  it('accepts Docker\'s fields and refuses what cannot be meant', () => {
    expect(restartPolicySchema.parse({ condition: 'on-failure', maxAttempts: 0, delayMs: 5_000, windowMs: 60_000 })).toEqual({ condition: 'on-failure', maxAttempts: 0, delayMs: 5_000, windowMs: 60_000 });
    expect(restartPolicySchema.safeParse({ condition: 'always' }).success).toBe(false);
    expect(restartPolicySchema.safeParse({ maxAttempts: -1 }).success).toBe(false);
    expect(restartPolicySchema.safeParse({ windowMs: 0 }).success).toBe(false);
  });
});

describe('validateRestartPolicy', () => {
  it('accepts the default and rejects nonsense', () => {
    expect(validateRestartPolicy(DEFAULT_RESTART_POLICY)).toBe(DEFAULT_RESTART_POLICY);
    expect(() => validateRestartPolicy({ ...DEFAULT_RESTART_POLICY, maxCrashes: 0 })).toThrow(/maxCrashes/);
    expect(() => validateRestartPolicy({ ...DEFAULT_RESTART_POLICY, maxDelayMs: 10 })).toThrow(RangeError);
    expect(() => validateRestartPolicy({ ...DEFAULT_RESTART_POLICY, windowMs: 0 })).toThrow(RangeError);
  });
});
