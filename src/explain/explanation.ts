/** What `meshnet explain` reports: the hops a new connection takes, what each counted, and where it would stop. */

/** Where a packet stops ('stop') or may suffer ('warn'), and what the operator does about it. */
export interface Problem {
  severity: 'stop' | 'warn';
  node: string;
  /** host, ingress_sbox, ov-<network>, or a task's name. */
  namespace: string;
  message: string;
  fix: string;
}

/** One hop of the path, with what the kernel counted there. */
export interface Hop {
  kind: 'host-dnat' | 'host-port' | 'gwbridge' | 'sbox-lb' | 'task-lb' | 'overlay' | 'return-path' | 'task';
  node: string;
  namespace: string;
  title: string;
  /** Rules, entries and counters, one line each. */
  details: string[];
  status: 'ok' | 'warn' | 'stop';
  problems: Problem[];
}

/** The rest of the path after the balancer picked one backend. */
export interface BackendBranch {
  address: string;
  port: number;
  weight: number;
  /** Share of new connections the balancer sends here (0 for weight 0). */
  share: number;
  task?: string;
  node?: string;
  hops: Hop[];
  delivered: boolean;
}

/** A task of the service that is not a backend, and why. */
export interface IdleTask {
  task: string;
  node: string;
  state: string;
  reason: string;
}

/** The whole answer for one target. */
export interface Explanation {
  /** e.g. host-a:8000/tcp, 10.0.1.2:80/tcp from web.1 */
  target: string;
  service?: string;
  verdict: 'delivered' | 'partial' | 'stops';
  /** Share of new connections that arrive at a listening process (0..1). */
  deliveredShare: number;
  summary: string;
  /** Hops before the balancer's choice. */
  hops: Hop[];
  backends: BackendBranch[];
  idleTasks: IdleTask[];
  /** Every problem found, in path order. */
  problems: Problem[];
}

/** A hop's status from its problems. */
export function hopStatus(problems: readonly Problem[]): Hop['status'] {
  return problems.some((p) => p.severity === 'stop') ? 'stop' : problems.length > 0 ? 'warn' : 'ok';
}

/** Builds a hop, its status following its problems. */
export function hop(h: Omit<Hop, 'status'>): Hop {
  return { ...h, status: hopStatus(h.problems) };
}

/** Counters as people read them. */
export function countersText(c: { packets: number; bytes: number }): string {
  return `${c.packets} pkts, ${bytesText(c.bytes)}`;
}

function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Completes an explanation: the verdict and summary follow from the hops and branches. */
export function conclude(e: Omit<Explanation, 'verdict' | 'deliveredShare' | 'summary' | 'problems'>, idleProblems: Problem[] = []): Explanation {
  const headStops = e.hops.some((h) => h.status === 'stop');
  const deliveredShare = headStops ? 0 : e.backends.filter((b) => b.delivered).reduce((a, b) => a + b.share, 0);
  const share = Math.round(deliveredShare * 1000) / 1000;
  const verdict: Explanation['verdict'] = share >= 0.999 ? 'delivered' : share <= 0 ? 'stops' : 'partial';
  const problems = [...e.hops.flatMap((h) => h.problems), ...e.backends.flatMap((b) => b.hops.flatMap((h) => h.problems)), ...idleProblems];
  const firstStop = problems.find((p) => p.severity === 'stop');
  const summary =
    verdict === 'delivered'
      ? `a new connection to ${e.target} arrives at a listening task${problems.length ? ` (${problems.length} warning${problems.length > 1 ? 's' : ''})` : ''}`
      : verdict === 'partial'
        ? `${Math.round((1 - share) * 100)}% of new connections to ${e.target} stop: ${firstStop?.message ?? 'see the backends below'}`
        : `a new connection to ${e.target} stops: ${firstStop?.message ?? 'no backend'}`;
  return { ...e, verdict, deliveredShare: share, summary, problems };
}
