import type { DnsCounters } from '../dns/dns-counters.js';
import type { ClusterSnapshot } from '../model/cluster.js';
import type { TaskInfo, TaskStateEvent } from '../tasks/supervisor.js';
import type { TargetStatus } from './applied-cache.js';
import type { NodePlan } from './node-plan.js';
import type { PassReport } from './node-reconciler.js';

/** One finished reconcile pass, as the agent reports it to its observers. */
export interface PassObservation {
  /** Wall time of the pass, in seconds. */
  seconds: number;
  report: PassReport;
  plan: NodePlan;
  /** The snapshot the plan was computed from (its revision is what the kernel now reflects). */
  snapshot: ClusterSnapshot;
  resync: boolean;
}

/**
 * Live views the agent lends its observers once it has started. They are read when someone asks
 * (a scrape, a probe), never computed on a pass, so observing costs a pass nothing.
 */
export interface AgentViews {
  /** Targets whose last apply failed (with their error), from the reconciler's status. */
  failingTargets(): TargetStatus[];
  /** Whether the store watch is up. */
  storeConnected(): boolean;
  /** The store revision the mirror has seen up to. */
  storeRevision(): number;
  /** The task processes this node's supervisor runs. */
  tasks(): TaskInfo[];
  /** The resolver's query and answer counters since start. */
  dnsCounters(): Promise<DnsCounters>;
}

/**
 * What the agent tells as it runs: metrics, health endpoints and systemd readiness listen here.
 * Calls are synchronous and must return at once: they run inside the agent's loop.
 */
export interface AgentObserver {
  /** start() finished: every part a pass uses exists, and the first pass is about to run. */
  started(views: AgentViews): void;
  passFinished(pass: PassObservation): void;
  taskChanged(event: TaskStateEvent): void;
  /** The store watch delivered a change (the mirror moved on). */
  storeChanged(): void;
}

/** One observer that tells each of `observers` in turn. */
export function fanOut(...observers: AgentObserver[]): AgentObserver {
  return {
    started: (views) => observers.forEach((o) => o.started(views)),
    passFinished: (pass) => observers.forEach((o) => o.passFinished(pass)),
    taskChanged: (event) => observers.forEach((o) => o.taskChanged(event)),
    storeChanged: () => observers.forEach((o) => o.storeChanged()),
  };
}
