import type { TargetStatus } from './applied-cache.js';
import type { AgentObserver, AgentViews, PassObservation } from './agent-observer.js';

/** An HTTP answer of a probe: the status and a JSON body that says why. */
export interface ProbeVerdict {
  status: 200 | 503;
  body: { status: string; reason?: string; [field: string]: unknown };
}

/** What liveness is decided on. Times in ms. */
export interface LivenessFacts {
  now: number;
  /** When the agent process began (a pass is due within the limit from then on). */
  startedAt: number;
  lastPassAt: number | null;
  maxPassAgeSeconds: number;
}

/**
 * /healthz: the process is alive and its passes complete. 503 when no pass finished for longer
 * than the limit (a pass stuck on the kernel, a wedged loop): restarting the agent is then the fix,
 * and a restart adopts the kernel state, so nothing is lost by it.
 */
export function livenessVerdict(f: LivenessFacts): ProbeVerdict {
  const since = f.lastPassAt ?? f.startedAt;
  const age = Math.round((f.now - since) / 100) / 10;
  if (age > f.maxPassAgeSeconds) {
    const what = f.lastPassAt === null ? `no reconcile pass has finished in the ${age} s since the agent started` : `no reconcile pass has finished for ${age} s`;
    return { status: 503, body: { status: 'stalled', reason: `${what} (limit ${f.maxPassAgeSeconds} s, --healthz-max-pass-age); the agent log says what it is waiting on`, lastPassSecondsAgo: f.lastPassAt === null ? null : age } };
  }
  return { status: 200, body: { status: 'ok', lastPassSecondsAgo: f.lastPassAt === null ? null : age } };
}

/** What readiness is decided on. */
export interface ReadinessFacts {
  /** start() finished (store opened, node registered, kernel adopted). */
  started: boolean;
  firstPassDone: boolean;
  storeConnected: boolean;
  failing: readonly TargetStatus[];
}

/** Failing targets listed in a /readyz body; the count says how many there are in all. */
const LISTED_FAILURES = 20;

/**
 * /readyz: the node's kernel state matches the store. 200 once the first pass finished with no
 * failing target while the store watch is up; 503 with the first reason otherwise.
 */
export function readinessVerdict(f: ReadinessFacts): ProbeVerdict {
  if (!f.started) return { status: 503, body: { status: 'starting', reason: 'the agent is still starting: opening the store, registering the node, adopting the kernel state' } };
  if (!f.firstPassDone) return { status: 503, body: { status: 'starting', reason: 'the first reconcile pass has not finished yet' } };
  if (!f.storeConnected) return { status: 503, body: { status: 'store_disconnected', reason: 'the store watch is down: the node keeps serving its last state but does not follow the cluster; check that the store is reachable' } };
  if (f.failing.length > 0) {
    return {
      status: 503,
      body: {
        status: 'targets_failing',
        reason: `${f.failing.length} target(s) fail to apply (retried every pass); the agent log has each error as reconcile.target_failed`,
        failing: f.failing.slice(0, LISTED_FAILURES).map((t) => ({ surface: t.surface, target: t.target, error: t.error, since: t.failingSince })),
      },
    };
  }
  return { status: 200, body: { status: 'ready' } };
}

/** Follows the agent for its probes: when it started, when passes finish, what fails. */
export class AgentHealth implements AgentObserver {
  private views: AgentViews | null = null;
  private lastPassAt: number | null = null;
  private readonly startedAt: number;

  constructor(
    private readonly maxPassAgeSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  started(views: AgentViews): void {
    this.views = views;
  }

  passFinished(_pass: PassObservation): void {
    this.lastPassAt = this.now();
  }

  taskChanged(): void {}

  storeChanged(): void {}

  /** The /healthz answer now. */
  liveness(): ProbeVerdict {
    return livenessVerdict({ now: this.now(), startedAt: this.startedAt, lastPassAt: this.lastPassAt, maxPassAgeSeconds: this.maxPassAgeSeconds });
  }

  /** The /readyz answer now. */
  readiness(): ProbeVerdict {
    const v = this.views;
    return readinessVerdict({
      started: v !== null,
      firstPassDone: this.lastPassAt !== null,
      storeConnected: v?.storeConnected() ?? false,
      failing: v?.failingTargets() ?? [],
    });
  }
}
