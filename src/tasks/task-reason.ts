import { LAUNCH_FAILED_EXIT } from './task-process.js';
import type { TaskState } from './task-meta.js';
import { describeResult, type HealthState } from './health-check.js';

/** How long a running process may take to listen on its target ports before `task ls` says it does not. */
export const READY_DEADLINE_MS = 30_000;

/**
 * The short reason a process ended, as `task ls` shows it: `exit 1`, `killed by SIGKILL`. The
 * statuses meshnet or the shell give a meaning to carry it, so the operator knows where to look.
 */
export function exitReason(code: number | null, signal: string | null): string {
  if (signal) return `killed by ${signal}`;
  if (code === LAUNCH_FAILED_EXIT) return `exit ${code}: meshnet could not prepare the task (see its logs)`;
  if (code === 127) return 'exit 127: command not found';
  if (code === 126) return 'exit 126: command not executable';
  if (code !== null) return `exit ${code}`;
  return 'ended (exit status unknown: the process was adopted, not started, by this agent)';
}

/** A target port as the readiness check sees it. */
export interface TargetPort {
  protocol: 'tcp' | 'udp';
  target: number;
}

/** `80`, `80, 443`, `53/udp`: the target ports a task should listen on, tcp bare as Docker prints them. */
export function portList(ports: readonly TargetPort[]): string {
  const seen = [...new Set(ports.map((p) => (p.protocol === 'tcp' ? `${p.target}` : `${p.target}/udp`)))];
  return seen.join(', ');
}

/** What the message of a task record is computed from (a TaskInfo and the readiness check). */
export interface TaskMessageInput {
  state: TaskState;
  /** Why the process last ended or could not start; undefined when it never ended. */
  reason?: string | undefined;
  restarts: number;
  /** When the current process started (ISO); null when none runs. */
  startedAt: string | null;
  /** The process listens on every target port (or the task has none). */
  ready: boolean;
  ports: readonly TargetPort[];
  now: number;
  readyDeadlineMs?: number;
  /** The task's health, when it has a health check. */
  health?: HealthState | undefined;
}

/**
 * The message of a task record: why it is not running, or undefined when it runs, listens and is
 * healthy. `exit 3` (failed), `exit 3, restarting`, `exit 0, complete`, `not listening on 80 after
 * 30 s`, `unhealthy (health check exit 1: ...)`, `health: starting`. Pure.
 */
export function taskMessage(i: TaskMessageInput): string | undefined {
  if (i.state === 'failed') return i.reason ?? 'failed';
  if (i.state === 'shutdown') return i.reason ? `${i.reason}, complete` : 'complete';
  if (i.state === 'exited' || (i.state === 'starting' && i.startedAt === null)) return i.reason ? `${i.reason}, restarting` : undefined;
  if (i.state !== 'running') return undefined;
  if (i.ready) return i.health ? healthMessage(i.health, i.restarts > 0 ? i.reason : undefined) : undefined;
  const deadline = i.readyDeadlineMs ?? READY_DEADLINE_MS;
  const started = i.startedAt === null ? Number.NaN : Date.parse(i.startedAt);
  if (Number.isFinite(started) && i.now - started >= deadline) {
    return `not listening on ${portList(i.ports)} after ${Math.round(deadline / 1000)} s`;
  }
  // Still within its deadline: a crash loop keeps showing why it restarted.
  return i.restarts > 0 && i.reason ? `${i.reason}, restarted` : undefined;
}

/** Why a listening task with a health check is not (or no longer) taken for ready; undefined when healthy. */
function healthMessage(h: HealthState, restartedBecause: string | undefined): string | undefined {
  const last = h.log.at(-1);
  if (h.status === 'healthy') return undefined;
  if (h.status === 'unhealthy') return last ? `unhealthy (${describeResult(last)})` : 'unhealthy';
  if (h.failingStreak > 0 && last) return `health: starting, ${h.failingStreak} failed (${describeResult(last)})`;
  return restartedBecause ? `${restartedBecause}, restarted; health: starting` : 'health: starting';
}
