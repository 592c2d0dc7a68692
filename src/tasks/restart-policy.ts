import { z } from 'zod';

/** When a task's process exits: whether to start it again, after how long, or leave it down. */

/** Tunables of the restart policy. */
export interface RestartPolicy {
  /** Delay before the first restart. */
  initialDelayMs: number;
  /** Ceiling of the doubling delay. */
  maxDelayMs: number;
  /** This many exits within `windowMs` marks the task failed. */
  maxCrashes: number;
  /** Sliding window over which exits are counted. */
  windowMs: number;
}

/** 100 ms doubling to 5 s; failed after 5 exits within 60 s. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  maxCrashes: 5,
  windowMs: 60_000,
};

/** Rejects policies that would never restart or never stop restarting. */
export function validateRestartPolicy(p: RestartPolicy): RestartPolicy {
  const ok =
    Number.isFinite(p.initialDelayMs) && p.initialDelayMs >= 0 &&
    Number.isFinite(p.maxDelayMs) && p.maxDelayMs >= p.initialDelayMs &&
    Number.isInteger(p.maxCrashes) && p.maxCrashes >= 1 &&
    Number.isFinite(p.windowMs) && p.windowMs > 0;
  if (!ok) {
    throw new RangeError(
      `invalid restart policy ${JSON.stringify(p)}: need 0 <= initialDelayMs <= maxDelayMs, maxCrashes >= 1 (integer), windowMs > 0`,
    );
  }
  return p;
}

/** Docker's --restart-condition values. */
export const RESTART_CONDITIONS = ['none', 'on-failure', 'any'] as const;
/** When a task is restarted after its process ends. */
export type RestartCondition = (typeof RESTART_CONDITIONS)[number];

/**
 * A service's restart policy (Docker's --restart-* flags). Each field is optional, and an absent one
 * keeps meshnet's default for it (not Docker's): condition any, a delay of 100 ms doubling to 5 s,
 * failed after 5 exits within 60 s. So a service created without these flags behaves as before.
 */
export interface ServiceRestartPolicy {
  condition?: RestartCondition;
  /** Restarts allowed within `windowMs` (for ever when no window is given); 0: unlimited. */
  maxAttempts?: number;
  /** A fixed delay before each restart, instead of the doubling one. */
  delayMs?: number;
  /** The window restarts are counted in. */
  windowMs?: number;
}


const restartPolicyFields = {
  condition: z.enum(RESTART_CONDITIONS, 'restart condition must be none, on-failure or any').optional(),
  maxAttempts: z.number().int().min(0).max(10_000, 'restart max attempts: 0 (unlimited) to 10000').optional(),
  delayMs: z.number().int().min(0).max(86_400_000, 'restart delay: at most 24h').optional(),
  windowMs: z.number().int().min(1, 'restart window: more than 0').max(86_400_000, 'restart window: at most 24h').optional(),
};
/** A stored ServiceRestartPolicy (milliseconds); loose, so a field of a newer meshnet is kept. */
export const restartPolicySchema = z.looseObject(restartPolicyFields);
/** A ServiceRestartPolicy as users submit it: strict, so a typo is an error. */
export const restartPolicySpecSchema = z.strictObject(restartPolicyFields);

/** How a process ended, as the restart condition sees it: exit 0 is a success, anything else (unhealthy too) a failure. */
export type ExitOutcome = 'success' | 'failure';

/** The decision after a task's process ended: restart it after `delayMs`, or leave it down as complete or failed. */
export type TaskExitDecision =
  | { action: 'restart'; delayMs: number; crashes: number[]; why: string }
  | { action: 'stop'; final: 'complete' | 'failed'; crashes: number[]; why: string };

// Enough history for the doubling delay to reach any ceiling; a longer one only matters for max attempts.
const BACKOFF_HISTORY = 64;

/**
 * Decides what follows an exit at `now` under the node's tunables `base` and the service's policy.
 * Pure. The history (`crashes`, exit times) is what the supervisor keeps between exits.
 */
export function decideAfterTaskExit(
  base: RestartPolicy,
  service: ServiceRestartPolicy | undefined,
  previousCrashes: readonly number[],
  now: number,
  outcome: ExitOutcome,
): TaskExitDecision {
  const condition = service?.condition ?? 'any';
  const final = outcome === 'success' ? 'complete' : 'failed';
  const past = previousCrashes.filter((t) => t <= now);
  if (condition === 'none' || (condition === 'on-failure' && outcome === 'success')) {
    return { action: 'stop', final, crashes: [...past.slice(-BACKOFF_HISTORY), now], why: `not restarted (--restart-condition ${condition})` };
  }
  const docker = service?.maxAttempts !== undefined;
  // Docker counts restarts for ever unless a window is given; meshnet's own guard counts exits within 60 s.
  const windowMs = service?.windowMs ?? (docker ? undefined : base.windowMs);
  const inWindow = windowMs === undefined ? past : past.filter((t) => t > now - windowMs);
  const maxRestarts = docker ? service.maxAttempts! : base.maxCrashes - 1;
  const keep = Math.max(BACKOFF_HISTORY, maxRestarts + 1);
  const crashes = [...inWindow.slice(-(keep - 1)), now];
  const span = windowMs === undefined ? 'ever' : `within ${windowMs / 1000} s`;
  if (maxRestarts > 0 || !docker) {
    if (crashes.length > maxRestarts) {
      const why = docker ? `${crashes.length - 1} of ${maxRestarts} restarts used ${span}: not restarting` : `${crashes.length} of ${base.maxCrashes} exits ${span}: not restarting`;
      return { action: 'stop', final, crashes, why };
    }
  }
  // The doubling counts recent exits only, so a task that crashes rarely is restarted quickly again.
  const recent = crashes.filter((t) => t > now - base.windowMs).length;
  const delayMs = service?.delayMs ?? Math.min(base.maxDelayMs, base.initialDelayMs * 2 ** Math.min(recent - 1, 52));
  const counted = docker ? (maxRestarts === 0 ? 'unlimited restarts' : `restart ${crashes.length} of ${maxRestarts} ${span}`) : `${crashes.length} of ${base.maxCrashes} exits ${span}`;
  return { action: 'restart', delayMs, crashes, why: `restarting in ${delayMs} ms (${counted})` };
}
