import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthMonitor } from './health-check-monitor.js';
import { initialHealth, type Healthcheck, type HealthResult, type HealthState } from './health-check.js';

const check: Healthcheck = { cmd: 'true', intervalMs: 1_000, timeoutMs: 500, retries: 2, startPeriodMs: 0 };

describe('HealthMonitor', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  /** A monitor whose probe answers from `codes`, taking `probeMs` each. */
  function monitor(codes: number[], probeMs = 0, c: Healthcheck = check) {
    const starts: number[] = [];
    const seen: [HealthState, HealthState][] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const m = new HealthMonitor({
      check: c,
      processStartedAt: 0,
      initial: initialHealth(),
      now: () => Date.now(),
      probe: async () => {
        starts.push(Date.now());
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        if (probeMs > 0) await new Promise((r) => setTimeout(r, probeMs));
        inFlight--;
        const code = codes.shift() ?? 0;
        const t = new Date(Date.now()).toISOString();
        return { exitCode: code, output: '', start: t, end: t } satisfies HealthResult;
      },
      onResult: (s, p) => seen.push([s, p]),
    });
    return { m, starts, seen, maxInFlight: () => maxInFlight };
  }

  it('checks one interval after the start, then every interval, and reports each result', async () => {
    const { m, starts, seen } = monitor([1, 0, 1, 1]);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(starts).toEqual([1_000, 2_000, 3_000, 4_000]);
    expect(seen.map(([s]) => s.status)).toEqual(['starting', 'healthy', 'healthy', 'unhealthy']);
    expect(m.health.status).toBe('unhealthy');
    m.stop();
  });

  it('never runs two checks at once: a slow check delays the next', async () => {
    const { m, starts, maxInFlight } = monitor([], 1_500);
    await vi.advanceTimersByTimeAsync(6_000);
    expect(maxInFlight()).toBe(1);
    // Each starts when the one before ends (a timer of 0 runs a millisecond later).
    expect(starts).toHaveLength(4);
    starts.slice(1).forEach((t, i) => expect(t - starts[i]!).toBeGreaterThanOrEqual(1_500));
    starts.slice(1).forEach((t, i) => expect(t - starts[i]!).toBeLessThanOrEqual(1_502));
    m.stop();
  });

  it('stops checking when stopped, and a result in flight is dropped', async () => {
    const { m, starts, seen } = monitor([0, 0], 500);
    await vi.advanceTimersByTimeAsync(1_200);
    m.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(starts).toEqual([1_000]);
    expect(seen).toEqual([]);
  });

  it('takes a new interval without losing the status', async () => {
    const { m, starts } = monitor([0, 0, 0, 0]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(m.health.status).toBe('healthy');
    m.reconfigure({ ...check, intervalMs: 300 });
    await vi.advanceTimersByTimeAsync(700);
    expect(starts).toEqual([1_000, 1_300, 1_600]);
    expect(m.health.status).toBe('healthy');
    m.stop();
  });
});
