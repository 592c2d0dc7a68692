import { z } from 'zod';

// A task's health check as Docker defines it (HEALTHCHECK / --health-*), decided here as pure data:
// the state after each result. health-check-runner.ts runs the command, health-check-monitor.ts the clock.

/** Docker's defaults: a check every 30 s, 30 s to answer, unhealthy after 3 failures in a row, no start period. */
export const HEALTH_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 } as const;

/** Results kept per task, as Docker keeps 5. */
export const HEALTH_LOG_SIZE = 5;
/** Bytes of a check's output kept per result (Docker keeps 4 KiB; these go into the store). */
export const HEALTH_OUTPUT_HEAD = 256;

// Each check is a process: an interval below 100 ms would fork without pause.
const MIN_INTERVAL_MS = 100;
const DAY_MS = 86_400_000;


const healthcheckFields = {
  cmd: z.string().min(1, 'health command cannot be empty').max(4096, 'health command: at most 4096 characters').refine((s) => !s.includes('\0'), 'health command cannot contain NUL'),
  intervalMs: z.number().int().min(MIN_INTERVAL_MS, `health interval: at least ${MIN_INTERVAL_MS}ms (each check is a process)`).max(DAY_MS, 'health interval: at most 24h'),
  timeoutMs: z.number().int().min(1, 'health timeout: at least 1ms').max(DAY_MS, 'health timeout: at most 24h'),
  retries: z.number().int().min(1, 'health retries: at least 1').max(100, 'health retries: at most 100'),
  startPeriodMs: z.number().int().min(0).max(DAY_MS, 'health start period: at most 24h'),
};
/** A health check as stored on a service and given to a task: `sh -c cmd` inside the task, durations in ms. */
export const healthcheckSchema = z.looseObject(healthcheckFields);
/** A health check as users submit it: strict, so a typo is an error. */
export const healthcheckSpecSchema = z.strictObject(healthcheckFields);
/** A task's health check. */
export type Healthcheck = z.infer<typeof healthcheckSchema>;

/** Docker's three health states. */
export const HEALTH_STATUSES = ['starting', 'healthy', 'unhealthy'] as const;
/** starting until the first success (or `retries` failures after the start period), then healthy or unhealthy. */
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** One check's result: exit code (-1 when it timed out or could not run), the head of its output, when it ran. */
// Type aliases, not interfaces: they are stored as they are, into the record's loose schema.
export type HealthResult = {
  exitCode: number;
  output: string;
  start: string;
  end: string;
};

/** A task's health: the status, failures in a row, and the results that changed it. */
export type HealthState = {
  status: HealthStatus;
  failingStreak: number;
  /**
   * The last HEALTH_LOG_SIZE results that changed the status, the streak or the exit code. A steady
   * result adds nothing, so a healthy task's record is not rewritten at every interval.
   */
  log: HealthResult[];
};

/** The health of a process that just started; the log of its predecessors is kept, to tell why they were restarted. */
export function initialHealth(log: readonly HealthResult[] = []): HealthState {
  return { status: 'starting', failingStreak: 0, log: [...log] };
}

/**
 * The health after `result`, as Docker's monitor decides: exit 0 makes it healthy and clears the
 * streak; any other result adds to the streak, and `retries` in a row make it unhealthy, except
 * that failures before the first success and within the start period do not count. Pure.
 */
export function afterCheck(state: HealthState, check: Pick<Healthcheck, 'retries' | 'startPeriodMs'>, result: HealthResult, processStartedAt: number): HealthState {
  let next: HealthState;
  if (result.exitCode === 0) {
    next = { status: 'healthy', failingStreak: 0, log: state.log };
  } else {
    const inStartPeriod = state.status === 'starting' && Date.parse(result.start) - processStartedAt < check.startPeriodMs;
    const streak = inStartPeriod ? state.failingStreak : state.failingStreak + 1;
    next = { status: streak >= check.retries ? 'unhealthy' : state.status, failingStreak: streak, log: state.log };
  }
  const last = state.log.at(-1);
  if (next.status !== state.status || next.failingStreak !== state.failingStreak || last?.exitCode !== result.exitCode) {
    next.log = [...state.log, { ...result, output: outputHead(result.output) }].slice(-HEALTH_LOG_SIZE);
  }
  return next;
}

/** True when two healths differ in what the store shows (status, streak, logged results), whatever their key order. */
export function healthDiffers(a: HealthState | undefined, b: HealthState | undefined): boolean {
  const key = (h: HealthState | undefined) => (h ? JSON.stringify([h.status, h.failingStreak, h.log.map((r) => [r.exitCode, r.output, r.start, r.end])]) : '');
  return key(a) !== key(b);
}

/** The first HEALTH_OUTPUT_HEAD bytes of a check's output, cut on a character boundary. */
export function outputHead(output: string): string {
  const bytes = Buffer.from(output, 'utf8');
  if (bytes.length <= HEALTH_OUTPUT_HEAD) return output;
  return bytes.subarray(0, HEALTH_OUTPUT_HEAD).toString('utf8').replace(/\uFFFD+$/, '');
}

/** Why a check's result is a failure, short, for a task's message: `health check exit 1: no such file`. */
export function describeResult(r: HealthResult): string {
  const first = r.output.trim().split('\n')[0]?.slice(0, 80) ?? '';
  const what = r.exitCode === -1 ? 'health check did not finish' : `health check exit ${r.exitCode}`;
  return first ? `${what}: ${first}` : what;
}

/** A task's health as its record stores it (TaskRecord.health); loose, so a newer meshnet's fields are kept. */
export const taskHealthSchema = z.looseObject({
  status: z.enum(HEALTH_STATUSES),
  failingStreak: z.number().int().min(0),
  log: z.array(z.looseObject({ exitCode: z.number().int(), output: z.string().max(4 * HEALTH_OUTPUT_HEAD), start: z.string(), end: z.string() })).max(2 * HEALTH_LOG_SIZE),
});
