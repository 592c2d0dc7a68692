/** When a task's process exits: how long to wait before the next start, or give up. */

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

/** The decision after an exit, with the exit history to keep (timestamps inside the window). */
export type RestartDecision =
  | { action: 'restart'; delayMs: number; crashes: number[] }
  | { action: 'fail'; crashes: number[] };

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

/**
 * Records an exit at `now` and decides. Only exits within the window count, so a task that
 * crashes rarely keeps being restarted quickly, while a crash loop backs off and then fails.
 */
export function decideAfterExit(policy: RestartPolicy, previousCrashes: readonly number[], now: number): RestartDecision {
  const crashes = [...previousCrashes.filter((t) => t > now - policy.windowMs && t <= now), now];
  if (crashes.length >= policy.maxCrashes) return { action: 'fail', crashes };
  const delayMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (crashes.length - 1));
  return { action: 'restart', delayMs, crashes };
}
