import { describe, expect, it } from 'vitest';
import { decideAfterExit, DEFAULT_RESTART_POLICY, validateRestartPolicy, type RestartPolicy } from './restart-policy.js';

/** Replays exits at the given times through the policy, as the supervisor does. */
function replay(policy: RestartPolicy, times: number[]) {
  let crashes: number[] = [];
  return times.map((t) => {
    const d = decideAfterExit(policy, crashes, t);
    crashes = d.crashes;
    return d;
  });
}

describe('decideAfterExit', () => {
  it('backs off 100, 200, 400, 800 ms and fails at the fifth exit within the window', () => {
    const decisions = replay(DEFAULT_RESTART_POLICY, [0, 1_000, 2_000, 3_000, 4_000]);
    expect(decisions.map((d) => (d.action === 'restart' ? d.delayMs : 'fail'))).toEqual([100, 200, 400, 800, 'fail']);
  });

  it('caps the delay at maxDelayMs', () => {
    const policy = { ...DEFAULT_RESTART_POLICY, maxCrashes: 10 };
    const decisions = replay(policy, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(decisions.map((d) => (d.action === 'restart' ? d.delayMs : 'fail'))).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it('forgets exits older than the window, so rare crashes never fail the task', () => {
    const times = Array.from({ length: 20 }, (_, i) => i * 61_000);
    const decisions = replay(DEFAULT_RESTART_POLICY, times);
    expect(decisions.every((d) => d.action === 'restart' && d.delayMs === 100)).toBe(true);
    expect(decisions.at(-1)!.crashes).toEqual([19 * 61_000]);
  });

  it('counts only exits strictly inside the window', () => {
    const policy = { ...DEFAULT_RESTART_POLICY, maxCrashes: 2, windowMs: 1_000 };
    expect(decideAfterExit(policy, [0], 1_000)).toEqual({ action: 'restart', delayMs: 100, crashes: [1_000] });
    expect(decideAfterExit(policy, [1], 1_000)).toEqual({ action: 'fail', crashes: [1, 1_000] });
  });

  it('fails at once when maxCrashes is 1', () => {
    expect(decideAfterExit({ ...DEFAULT_RESTART_POLICY, maxCrashes: 1 }, [], 5).action).toBe('fail');
  });

  it('ignores recorded exits from the future (a clock step backwards)', () => {
    const d = decideAfterExit(DEFAULT_RESTART_POLICY, [10_000, 20_000], 5_000);
    expect(d).toEqual({ action: 'restart', delayMs: 100, crashes: [5_000] });
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
