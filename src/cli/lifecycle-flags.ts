import { Option, type Command } from 'commander';
import { CliError, EXIT } from './cli-context.js';
import { parseDuration } from './duration-flag.js';
import { HEALTH_DEFAULTS, healthcheckSpecSchema, type Healthcheck } from '../tasks/health-check.js';
import { RESTART_CONDITIONS, restartPolicySpecSchema, type ServiceRestartPolicy } from '../tasks/restart-policy.js';

/** The flags `service create` and `service update` share for health checks and the restart policy. */
export interface LifecycleFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  /** false when --no-healthcheck was given (commander's negated option). */
  healthcheck?: boolean;
  restartCondition?: string;
  restartMaxAttempts?: string;
  restartDelay?: string;
  restartWindow?: string;
}

const HEALTH_FLAGS = { cmd: '--health-cmd', intervalMs: '--health-interval', timeoutMs: '--health-timeout', retries: '--health-retries', startPeriodMs: '--health-start-period' } as const;
const RESTART_FLAGS = { condition: '--restart-condition', maxAttempts: '--restart-max-attempts', delayMs: '--restart-delay', windowMs: '--restart-window' } as const;

/** Adds Docker's --health-* and --restart-* flags, with meshnet's defaults said where they differ from Docker's. */
export function addLifecycleFlags(cmd: Command): Command {
  return cmd
    .option('--health-cmd <command>', 'health check run as `sh -c COMMAND` inside each task (its namespaces, user and environment); exit 0 is healthy, and a task with a check gets traffic only while healthy')
    .option('--health-interval <duration>', 'time between checks, e.g. 500ms, 5s, 1m30s (default 30s)')
    .option('--health-timeout <duration>', 'longest a check may run before it counts as failed (default 30s)')
    .option('--health-retries <n>', 'failures in a row that make a task unhealthy; it is then restarted under the restart policy (default 3)')
    .option('--health-start-period <duration>', 'time after a start in which failures do not count, until the first success (default 0s)')
    .option('--no-healthcheck', 'no health check: a task is ready when it listens on its target ports')
    .addOption(new Option('--restart-condition <condition>', 'restart a task whose process ends: none, on-failure (not after exit 0), any (default any); an unhealthy task counts as failed').choices([...RESTART_CONDITIONS]))
    .option('--restart-max-attempts <n>', 'restarts allowed (within --restart-window when given, else for ever) before the task is left down; 0 = unlimited (without it and --restart-window: failed after 5 exits within 60 s)')
    .option('--restart-delay <duration>', 'fixed wait before each restart (Docker\'s default is 5s; without this flag meshnet waits 100 ms, doubling to 5 s)')
    .option('--restart-window <duration>', 'window the restarts are counted in (without it: 60 s for the default 5-exit limit, for ever with --restart-max-attempts)');
}

/** True when any health or restart flag was given. */
export function hasLifecycleFlags(o: LifecycleFlags): boolean {
  return o.healthcheck === false || [o.healthCmd, o.healthInterval, o.healthTimeout, o.healthRetries, o.healthStartPeriod, o.restartCondition, o.restartMaxAttempts, o.restartDelay, o.restartWindow].some((v) => v !== undefined);
}

function count(flag: string, text: string, min: number): number {
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) < min) throw new CliError(`invalid ${flag} ${JSON.stringify(text)}: a whole number from ${min}`, EXIT.usage);
  return Number(text);
}

/** The zod message of a refused field, with the flag that set it. */
function refuse(flags: Record<string, string>, given: Record<string, unknown>, issues: readonly { path: PropertyKey[]; message: string }[]): never {
  const issue = issues[0]!;
  const field = String(issue.path[0] ?? '');
  const flag = flags[field] ?? field;
  throw new CliError(`invalid ${flag}${given[field] !== undefined ? ` ${JSON.stringify(given[field])}` : ''}: ${issue.message}`, EXIT.usage);
}

/**
 * The health check the flags ask for: undefined when they leave it as it is, null to remove it
 * (--no-healthcheck). Flags without --health-cmd change the `current` check; with none, they are refused.
 */
export function healthcheckFromFlags(o: LifecycleFlags, current?: Healthcheck): Healthcheck | null | undefined {
  const timing = { intervalMs: o.healthInterval, timeoutMs: o.healthTimeout, retries: o.healthRetries, startPeriodMs: o.healthStartPeriod };
  const anyHealth = o.healthCmd !== undefined || Object.values(timing).some((v) => v !== undefined);
  if (o.healthcheck === false) {
    if (anyHealth) throw new CliError('--no-healthcheck conflicts with --health-* options: give one or the other', EXIT.usage);
    return null;
  }
  if (!anyHealth) return undefined;
  if (o.healthCmd === undefined && current === undefined) {
    throw new CliError('--health-interval, --health-timeout, --health-retries and --health-start-period need --health-cmd: the service has no health check yet', EXIT.usage);
  }
  const given: Record<string, unknown> = {
    ...(o.healthCmd !== undefined ? { cmd: o.healthCmd } : {}),
    ...(o.healthInterval !== undefined ? { intervalMs: parseDuration('--health-interval', o.healthInterval) } : {}),
    ...(o.healthTimeout !== undefined ? { timeoutMs: parseDuration('--health-timeout', o.healthTimeout) } : {}),
    ...(o.healthRetries !== undefined ? { retries: count('--health-retries', o.healthRetries, 1) } : {}),
    ...(o.healthStartPeriod !== undefined ? { startPeriodMs: parseDuration('--health-start-period', o.healthStartPeriod) } : {}),
  };
  const raw = { ...HEALTH_DEFAULTS, ...(current ?? {}), ...given };
  const check = healthcheckSpecSchema.safeParse({ cmd: raw.cmd, intervalMs: raw.intervalMs, timeoutMs: raw.timeoutMs, retries: raw.retries, startPeriodMs: raw.startPeriodMs });
  if (!check.success) refuse(HEALTH_FLAGS, { ...given, ...(o.healthInterval ? { intervalMs: o.healthInterval } : {}), ...(o.healthTimeout ? { timeoutMs: o.healthTimeout } : {}), ...(o.healthStartPeriod ? { startPeriodMs: o.healthStartPeriod } : {}) }, check.error.issues);
  return check.data;
}

/** The restart policy the flags ask for, merged over `current`; undefined when no --restart-* flag was given. */
export function restartPolicyFromFlags(o: LifecycleFlags, current?: ServiceRestartPolicy): ServiceRestartPolicy | undefined {
  if ([o.restartCondition, o.restartMaxAttempts, o.restartDelay, o.restartWindow].every((v) => v === undefined)) return undefined;
  const given = {
    ...(o.restartCondition !== undefined ? { condition: o.restartCondition } : {}),
    ...(o.restartMaxAttempts !== undefined ? { maxAttempts: count('--restart-max-attempts', o.restartMaxAttempts, 0) } : {}),
    ...(o.restartDelay !== undefined ? { delayMs: parseDuration('--restart-delay', o.restartDelay) } : {}),
    ...(o.restartWindow !== undefined ? { windowMs: parseDuration('--restart-window', o.restartWindow) } : {}),
  };
  // Only the fields this version knows: the submitted policy is checked strictly.
  const base = current ? { condition: current.condition, maxAttempts: current.maxAttempts, delayMs: current.delayMs, windowMs: current.windowMs } : {};
  const known = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined));
  const policy = restartPolicySpecSchema.safeParse({ ...known, ...given });
  if (!policy.success) refuse(RESTART_FLAGS, { ...given, ...(o.restartDelay ? { delayMs: o.restartDelay } : {}), ...(o.restartWindow ? { windowMs: o.restartWindow } : {}) }, policy.error.issues);
  return policy.data;
}

/**
 * The service fields the flags set: on create (no `current`) a check and a policy, or nothing; on
 * update the merged ones, and `healthcheck: null` for --no-healthcheck.
 */
export function lifecycleFromFlags(o: LifecycleFlags, current?: { healthcheck?: Healthcheck; restartPolicy?: ServiceRestartPolicy }): { healthcheck?: Healthcheck | null; restartPolicy?: ServiceRestartPolicy } {
  const healthcheck = healthcheckFromFlags(o, current?.healthcheck);
  const restartPolicy = restartPolicyFromFlags(o, current?.restartPolicy);
  return {
    ...(healthcheck !== undefined && (healthcheck !== null || current !== undefined) ? { healthcheck } : {}),
    ...(restartPolicy !== undefined ? { restartPolicy } : {}),
  };
}
