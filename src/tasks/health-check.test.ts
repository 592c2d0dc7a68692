import { describe, expect, it } from 'vitest';
import { afterCheck, describeResult, HEALTH_LOG_SIZE, HEALTH_OUTPUT_HEAD, healthcheckSchema, healthDiffers, initialHealth, outputHead, type HealthResult, type HealthState } from './health-check.js';

const T0 = Date.parse('2024-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const result = (exitCode: number, ms: number, output = ''): HealthResult => ({ exitCode, output, start: at(ms), end: at(ms + 5) });

/** Feeds results (exit codes at 1 s steps from 1 s after the start) through the state machine. */
function run(codes: number[], check = { retries: 3, startPeriodMs: 0 }, from: HealthState = initialHealth()): HealthState[] {
  const states: HealthState[] = [];
  let s = from;
  codes.forEach((code, i) => {
    s = afterCheck(s, check, result(code, (i + 1) * 1_000, code === 0 ? 'ok' : 'no'), T0);
    states.push(s);
  });
  return states;
}

describe('afterCheck (Docker\'s health state machine)', () => {
  it('is starting until the first success, which makes it healthy', () => {
    expect(initialHealth().status).toBe('starting');
    expect(run([1, 0]).map((s) => s.status)).toEqual(['starting', 'healthy']);
  });

  it('retries failures in a row make it unhealthy; a success in between clears the streak', () => {
    const states = run([0, 1, 1, 0, 1, 1, 1]);
    expect(states.map((s) => s.status)).toEqual(['healthy', 'healthy', 'healthy', 'healthy', 'healthy', 'healthy', 'unhealthy']);
    expect(states.map((s) => s.failingStreak)).toEqual([0, 1, 2, 0, 1, 2, 3]);
  });

  it('with retries 1, one failure is enough', () => {
    expect(run([0, 1], { retries: 1, startPeriodMs: 0 }).at(-1)!.status).toBe('unhealthy');
  });

  it('does not count failures within the start period before the first success', () => {
    const states = run([1, 1, 1, 1, 1], { retries: 2, startPeriodMs: 3_500 });
    // checks at 1, 2, 3 s fall in the start period; 4 and 5 s count.
    expect(states.map((s) => s.failingStreak)).toEqual([0, 0, 0, 1, 2]);
    expect(states.at(-1)!.status).toBe('unhealthy');
  });

  it('a success within the start period makes it healthy, and later failures count even within it', () => {
    const states = run([0, 1, 1], { retries: 2, startPeriodMs: 60_000 });
    expect(states.map((s) => s.status)).toEqual(['healthy', 'healthy', 'unhealthy']);
  });

  it('a timeout (-1) is a failure like any non-zero exit', () => {
    expect(run([-1, -1, -1]).at(-1)!.status).toBe('unhealthy');
  });

  it('logs only results that change the status, the streak or the exit code, the last five', () => {
    const steady = run([0, 0, 0, 0]);
    expect(steady.at(-1)!.log.map((r) => r.exitCode)).toEqual([0]);
    expect(healthDiffers(steady[1], steady[2])).toBe(false);
    const flapping = run([0, 1, 0, 2, 0, 1, 1]);
    expect(flapping.at(-1)!.log).toHaveLength(HEALTH_LOG_SIZE);
    // seven results, each changing the streak: the first two fall out.
    expect(flapping.at(-1)!.log.map((r) => r.exitCode)).toEqual([0, 2, 0, 1, 1]);
  });

  it('a new process starts over but keeps the log of the one before', () => {
    const before = run([0, 1, 1, 1]).at(-1)!;
    const fresh = initialHealth(before.log);
    expect(fresh).toEqual({ status: 'starting', failingStreak: 0, log: before.log });
  });
});

describe('outputHead and describeResult', () => {
  it('keeps the first bytes of the output without splitting a character', () => {
    expect(outputHead('short')).toBe('short');
    const long = 'é'.repeat(HEALTH_OUTPUT_HEAD);
    const head = outputHead(long);
    expect(Buffer.byteLength(head)).toBeLessThanOrEqual(HEALTH_OUTPUT_HEAD);
    expect(head).toBe('é'.repeat(HEALTH_OUTPUT_HEAD / 2));
  });

  it('says what failed in a few words', () => {
    expect(describeResult(result(1, 0, 'cat: /tmp/x: No such file\nmore'))).toBe('health check exit 1: cat: /tmp/x: No such file');
    expect(describeResult(result(-1, 0, ''))).toBe('health check did not finish');
  });
});

describe('healthcheckSchema', () => {
  const ok = { cmd: 'test -f /tmp/ok', intervalMs: 1_000, timeoutMs: 500, retries: 1, startPeriodMs: 0 };
  it('accepts a check and refuses what would fork without pause or never fail', () => {
    expect(healthcheckSchema.parse(ok)).toEqual(ok);
    expect(healthcheckSchema.safeParse({ ...ok, intervalMs: 10 }).error?.issues[0]?.message).toMatch(/at least 100ms/);
    expect(healthcheckSchema.safeParse({ ...ok, retries: 0 }).success).toBe(false);
    expect(healthcheckSchema.safeParse({ ...ok, cmd: '' }).success).toBe(false);
  });
});
