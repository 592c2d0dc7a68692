import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { rcodeName, type DnsCounters } from '../dns/dns-counters.js';
import { processesSpawned } from '../sandbox/exec.js';
import type { TaskStateEvent } from '../tasks/supervisor.js';
import type { AgentObserver, AgentViews, PassObservation } from './agent-observer.js';
import { CHANGE_SURFACES, errorSurface, lbSeries, taskStateCounts, TASK_STATES } from './metric-series.js';

/**
 * Per-backend weight series a scrape carries at most. Formatting costs about 4-6 us a series on the agent's
 * event loop: 10,000 services x 10 backends would stall it for a second per scrape, so past this budget only
 * the per-frontend counts and weight sums are exported (and meshnet_lb_backend_weight_truncated says so).
 */
const BACKEND_WEIGHT_SERIES = 5000;

/** rcodes always exported (zeros included), so rate() queries on them work from the first scrape. */
const COMMON_RCODES = [0, 2, 3, 5];

/**
 * The agent's Prometheus metrics (prom-client, a registry of its own). A pass only bumps counters and
 * keeps a reference to its result; everything derived (backend sets, task states, DNS counts, store
 * state) is computed when /metrics is scraped, so an agent nobody scrapes pays nothing for them.
 */
export class AgentMetrics implements AgentObserver {
  readonly registry = new Registry();
  private views: AgentViews | null = null;
  private last: PassObservation | null = null;
  private readonly startedAt: number;
  private lastStoreChangeAt: number | null = null;
  /** When the oldest store change no pass has applied yet arrived, and the revision it brought. */
  private pending: { since: number; revision: number } | null = null;
  /** Restarts per task as last seen, so the counter grows by what is new. */
  private readonly restartsSeen = new Map<string, number>();
  private dnsRead: Promise<DnsCounters> | null = null;

  private readonly passSeconds: Histogram<'resync'>;
  private readonly passErrors: Counter<'surface'>;
  private readonly changes: Counter<'surface'>;
  private readonly restarts: Counter;
  private readonly lastPassTime: Gauge;
  private readonly now: () => number;

  /** `version` labels meshnet_build_info; `now` is the clock (tests give their own). */
  constructor(opts: { version: string; now?: () => number }) {
    const r = this.registry;
    const now = opts.now ?? Date.now;
    this.now = now;
    this.startedAt = now();
    // The event-loop lag monitor samples on a libuv timer: at prom-client's default 10 ms it wakes the
    // agent 100 times a second, about half a percent of a core on an idle agent. A 1 s timer still
    // records every stall that matters here (a pass holding the loop for hundreds of ms).
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 1000 });
    new Gauge({ name: 'meshnet_build_info', help: 'Always 1; the labels say which meshnet this is.', labelNames: ['version'], registers: [r] }).set({ version: opts.version }, 1);

    this.passSeconds = new Histogram({
      name: 'meshnet_reconcile_pass_duration_seconds',
      help: 'Wall time of one reconcile pass (resync: the periodic full pass that checks the kernel and prunes).',
      labelNames: ['resync'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [r],
    });
    this.passErrors = new Counter({ name: 'meshnet_reconcile_errors_total', help: 'Targets that failed to apply, by surface, summed over passes.', labelNames: ['surface'], registers: [r] });
    this.changes = new Counter({ name: 'meshnet_kernel_changes_total', help: 'Kernel objects and processes changed by passes, by surface.', labelNames: ['surface'], registers: [r] });
    for (const surface of Object.values(CHANGE_SURFACES)) this.changes.inc({ surface }, 0);
    this.lastPassTime = new Gauge({ name: 'meshnet_reconcile_last_pass_timestamp_seconds', help: 'Unix time the last pass finished (0: none yet).', registers: [r] });
    const failing: Gauge<'surface'> = new Gauge({
      name: 'meshnet_reconcile_failing_targets',
      help: 'Targets whose last apply failed, by surface (they are retried every pass).',
      labelNames: ['surface'],
      registers: [r],
      collect: () => {
        failing.reset();
        for (const t of this.views?.failingTargets() ?? []) failing.inc({ surface: t.surface });
      },
    });

    new Gauge({
      name: 'meshnet_lb_backends',
      help: 'Backends of each load-balanced frontend this node programs (state: active has weight > 0, draining 0).',
      labelNames: ['service', 'frontend', 'state'],
      registers: [r],
      collect: () => this.collectLb(),
    });
    new Gauge({ name: 'meshnet_lb_weight_sum', help: 'Sum of the backend weights of each frontend this node programs.', labelNames: ['service', 'frontend'], registers: [r] });
    new Gauge({
      name: 'meshnet_lb_backend_weight',
      help: `Weight of each backend of each frontend this node programs (0: draining); at most ${BACKEND_WEIGHT_SERIES} series, whole frontends first.`,
      labelNames: ['service', 'frontend', 'backend'],
      registers: [r],
    });
    new Gauge({ name: 'meshnet_lb_backend_weight_truncated', help: `1 when the node programs more than ${BACKEND_WEIGHT_SERIES} backends and meshnet_lb_backend_weight leaves frontends out.`, registers: [r] });

    // The workers' counts are cumulative already: each scrape sets the counters to them.
    const queries: Counter = new Counter({
      name: 'meshnet_dns_queries_total',
      help: 'Messages the resolver on 127.0.0.11 received, in every task namespace of this node.',
      registers: [r],
      collect: async () => {
        const c = await this.readDns();
        queries.reset();
        queries.inc(c?.queries ?? 0);
      },
    });
    const answers: Counter<'rcode'> = new Counter({
      name: 'meshnet_dns_answers_total',
      help: 'Answers the resolver sent, by rcode (forwarded answers by the upstream\'s rcode).',
      labelNames: ['rcode'],
      registers: [r],
      collect: async () => {
        const c = await this.readDns();
        answers.reset();
        for (let rcode = 0; rcode < 16; rcode++) {
          const n = c?.answers[rcode] ?? 0;
          if (n > 0 || COMMON_RCODES.includes(rcode)) answers.inc({ rcode: rcodeName(rcode) }, n);
        }
      },
    });
    const dropped: Counter = new Counter({
      name: 'meshnet_dns_dropped_total',
      help: 'Messages the resolver dropped unanswered (malformed, or over the error-answer rate limit).',
      registers: [r],
      collect: async () => {
        const c = await this.readDns();
        dropped.reset();
        dropped.inc(c?.dropped ?? 0);
      },
    });

    const tasks = new Gauge({
      name: 'meshnet_tasks',
      help: 'Task processes this node runs, by state.',
      labelNames: ['state'],
      registers: [r],
      collect: () => {
        const infos = this.views?.tasks() ?? [];
        const counts = taskStateCounts(infos.map((t) => t.state));
        for (const state of TASK_STATES) tasks.set({ state }, counts[state]);
        const live = new Set(infos.map((t) => t.taskId));
        for (const id of this.restartsSeen.keys()) if (!live.has(id)) this.restartsSeen.delete(id);
      },
    });
    this.restarts = new Counter({ name: 'meshnet_task_restarts_total', help: 'Times a task process was started again after it exited, on this node.', registers: [r] });
    let spawnedSeen = processesSpawned();
    new Counter({
      name: 'meshnet_processes_spawned_total',
      help: 'Helper processes (iptables-save, iptables-restore, ...) the agent started since it began; an idle agent starts almost none.',
      registers: [r],
      collect(this: Counter) {
        const now = processesSpawned();
        this.inc(now - spawnedSeen);
        spawnedSeen = now;
      },
    });

    new Gauge({ name: 'meshnet_store_connected', help: '1 while the store watch is up, 0 while the node runs on its last state.', registers: [r], collect: () => this.setGauge('meshnet_store_connected', this.views?.storeConnected() ? 1 : 0) });
    new Gauge({ name: 'meshnet_store_revision', help: 'The store revision the agent\'s mirror has seen up to.', registers: [r], collect: () => this.setGauge('meshnet_store_revision', this.views?.storeRevision() ?? 0) });
    new Gauge({ name: 'meshnet_applied_revision', help: 'The store revision the last finished pass applied.', registers: [r], collect: () => this.setGauge('meshnet_applied_revision', this.last?.snapshot.revision ?? 0) });
    new Gauge({
      name: 'meshnet_store_last_change_age_seconds',
      help: 'Seconds since the store watch last delivered a change (since start when none came).',
      registers: [r],
      collect: () => this.setGauge('meshnet_store_last_change_age_seconds', (now() - (this.lastStoreChangeAt ?? this.startedAt)) / 1000),
    });
    new Gauge({
      name: 'meshnet_store_watch_lag_seconds',
      help: 'How long the oldest store change no pass has applied yet has waited (0: the kernel reflects what the watch delivered).',
      registers: [r],
      collect: () => this.setGauge('meshnet_store_watch_lag_seconds', this.pending ? (now() - this.pending.since) / 1000 : 0),
    });
  }

  started(views: AgentViews): void {
    this.views = views;
    for (const t of views.tasks()) this.restartsSeen.set(t.taskId, t.restarts);
  }

  passFinished(pass: PassObservation): void {
    this.last = pass;
    this.passSeconds.observe({ resync: String(pass.resync) }, pass.seconds);
    for (const [field, surface] of Object.entries(CHANGE_SURFACES)) {
      const n = pass.report[field as keyof typeof CHANGE_SURFACES];
      if (n > 0) this.changes.inc({ surface }, n);
    }
    for (const e of pass.report.errors) this.passErrors.inc({ surface: errorSurface(e) });
    this.lastPassTime.set(this.now() / 1000);
    if (this.pending && pass.snapshot.revision >= this.pending.revision) this.pending = null;
  }

  taskChanged(e: TaskStateEvent): void {
    const seen = this.restartsSeen.get(e.taskId);
    if (seen !== undefined && e.restarts > seen) this.restarts.inc(e.restarts - seen);
    this.restartsSeen.set(e.taskId, e.restarts);
  }

  storeChanged(): void {
    const at = this.now();
    this.lastStoreChangeAt = at;
    this.pending ??= { since: at, revision: this.views?.storeRevision() ?? 0 };
  }

  /** One read of the workers' counters per scrape: the three DNS metrics collect at once and share it. */
  private readDns(): Promise<DnsCounters | undefined> {
    if (!this.views) return Promise.resolve(undefined);
    this.dnsRead ??= this.views.dnsCounters().finally(() => {
      this.dnsRead = null;
    });
    return this.dnsRead;
  }

  // Sets every LB gauge: the others, registered after this one, are read after this runs.
  private collectLb(): void {
    const count = this.registry.getSingleMetric('meshnet_lb_backends') as Gauge<'service' | 'frontend' | 'state'>;
    const sum = this.registry.getSingleMetric('meshnet_lb_weight_sum') as Gauge<'service' | 'frontend'>;
    const weight = this.registry.getSingleMetric('meshnet_lb_backend_weight') as Gauge<'service' | 'frontend' | 'backend'>;
    const truncated = this.registry.getSingleMetric('meshnet_lb_backend_weight_truncated') as Gauge;
    count.reset();
    sum.reset();
    weight.reset();
    let budget = BACKEND_WEIGHT_SERIES;
    let cut = false;
    for (const s of this.last ? lbSeries(this.last.plan, this.last.snapshot) : []) {
      const active = s.backends.filter((b) => b.weight > 0).length;
      count.set({ service: s.service, frontend: s.frontend, state: 'active' }, active);
      count.set({ service: s.service, frontend: s.frontend, state: 'draining' }, s.backends.length - active);
      sum.set({ service: s.service, frontend: s.frontend }, s.backends.reduce((n, b) => n + b.weight, 0));
      if (s.backends.length > budget) {
        cut = true;
        continue;
      }
      budget -= s.backends.length;
      for (const b of s.backends) weight.set({ service: s.service, frontend: s.frontend, backend: b.backend }, b.weight);
    }
    truncated.set(cut ? 1 : 0);
  }

  private setGauge(name: string, value: number): void {
    (this.registry.getSingleMetric(name) as Gauge).set(value);
  }
}
