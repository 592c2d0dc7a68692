import { describe, expect, it } from 'vitest';
import { AgentMetrics } from './metrics.js';
import type { AgentViews, PassObservation } from './agent-observer.js';
import type { PassReport } from './node-reconciler.js';
import { desiredNode, PlanMemo } from './node-plan.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';
import { emptyDnsCounters } from '../dns/dns-counters.js';
import type { TaskInfo } from '../tasks/supervisor.js';

const zero: PassReport = { namespaces: 0, sysctls: 0, gwLegs: 0, overlayOps: 0, lbChanges: 0, meshRules: 0, health: 0, processes: 0, dns: 0, removed: 0, pruned: 0, errors: [] };

function pass(revision: number, report: Partial<PassReport> = {}, seconds = 0.004): PassObservation {
  const snapshot = { ...snapshotFixture(), revision };
  const plan = desiredNode(snapshot, settingsFixture('host-a'), { gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpointsFixture, now: 0 }, new PlanMemo());
  return { seconds, report: { ...zero, ...report }, plan, snapshot, resync: false };
}

/** The value of one series in Prometheus text, or undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function fixture() {
  let now = 1_000_000;
  let revision = 10;
  const tasks: TaskInfo[] = [{ taskId: 't1', state: 'running', restarts: 2 } as TaskInfo, { taskId: 't2', state: 'failed', restarts: 5 } as TaskInfo];
  const dns = emptyDnsCounters();
  const views: AgentViews = {
    failingTargets: () => [{ surface: 'overlay', target: 'appnet', error: 'EPERM' }],
    storeConnected: () => true,
    storeRevision: () => revision,
    tasks: () => tasks,
    dnsCounters: async () => dns,
  };
  const m = new AgentMetrics({ version: '9.9.9', now: () => now });
  m.started(views);
  return { m, views, dns, tick: (ms: number) => (now += ms), setRevision: (r: number) => (revision = r) };
}

describe('AgentMetrics', () => {
  it('records pass durations, kernel changes and errors by surface', async () => {
    const { m } = fixture();
    m.passFinished(pass(10, { lbChanges: 3, meshRules: 1, errors: ['overlay appnet: EPERM', 'lb /x: gone'] }, 0.02));
    m.passFinished(pass(10, { lbChanges: 2 }));
    const text = await m.registry.metrics();
    expect(value(text, 'meshnet_reconcile_pass_duration_seconds_count{resync="false"}')).toBe(2);
    expect(value(text, 'meshnet_reconcile_pass_duration_seconds_bucket{le="0.005",resync="false"}')).toBe(1);
    expect(value(text, 'meshnet_kernel_changes_total{surface="lb"}')).toBe(5);
    expect(value(text, 'meshnet_kernel_changes_total{surface="rules"}')).toBe(1);
    expect(value(text, 'meshnet_kernel_changes_total{surface="overlay"}')).toBe(0);
    expect(value(text, 'meshnet_reconcile_errors_total{surface="overlay"}')).toBe(1);
    expect(value(text, 'meshnet_reconcile_failing_targets{surface="overlay"}')).toBe(1);
    expect(value(text, 'meshnet_build_info{version="9.9.9"}')).toBe(1);
  });

  it('exports the backends of each frontend the last plan programs', async () => {
    const { m } = fixture();
    expect(value(await m.registry.metrics(), 'meshnet_lb_backends{service="web",frontend="10.0.1.2/tcp",state="active"}')).toBeUndefined();
    m.passFinished(pass(10));
    const text = await m.registry.metrics();
    expect(value(text, 'meshnet_lb_backends{service="web",frontend="10.0.1.2/tcp",state="active"}')).toBe(3);
    expect(value(text, 'meshnet_lb_backends{service="web",frontend="ingress:8000/tcp",state="draining"}')).toBe(0);
    expect(value(text, 'meshnet_lb_backend_weight{service="web",frontend="10.0.1.2/tcp",backend="10.0.1.12"}')).toBe(1);
  });

  it('caps the per-backend weight series and says so, keeping counts and weight sums of every frontend', async () => {
    const { m } = fixture();
    const services = Array.from({ length: 600 }, (_, i) => ({
      id: `s${i}`,
      frontend: { kind: 'vip' as const, address: `10.96.${i >> 8}.${i & 255}`, protocol: 'tcp' as const, port: 0 },
      scheduler: 'rr' as const,
      backends: Array.from({ length: 10 }, (_, b) => ({ address: `10.128.${i >> 4}.${((i & 15) << 4) + b}`, port: 0, weight: 2 })),
    }));
    const big = { ...pass(10), plan: { lbTables: [{ netns: '/x', table: { services } }] } as never };
    m.passFinished(big);
    const text = await m.registry.metrics();
    expect(text.split('\n').filter((l) => l.startsWith('meshnet_lb_backend_weight{')).length).toBe(5000);
    expect(value(text, 'meshnet_lb_backend_weight_truncated')).toBe(1);
    expect(value(text, 'meshnet_lb_weight_sum{service="s599",frontend="10.96.2.87/tcp"}')).toBe(20);
    expect(value(text, 'meshnet_lb_backends{service="s599",frontend="10.96.2.87/tcp",state="active"}')).toBe(10);
  });

  it('exports task states, restarts that happen after start, and DNS answers by rcode', async () => {
    const { m, dns } = fixture();
    m.taskChanged({ taskId: 't1', state: 'starting', restarts: 3 } as never);
    m.taskChanged({ taskId: 't1', state: 'running', restarts: 3 } as never);
    m.taskChanged({ taskId: 'new', state: 'running', restarts: 0 } as never);
    dns.queries = 7;
    dns.answers[0] = 5;
    dns.answers[3] = 1;
    dns.dropped = 1;
    const text = await m.registry.metrics();
    expect(value(text, 'meshnet_tasks{state="running"}')).toBe(1);
    expect(value(text, 'meshnet_tasks{state="failed"}')).toBe(1);
    expect(value(text, 'meshnet_task_restarts_total')).toBe(1);
    expect(value(text, 'meshnet_dns_queries_total')).toBe(7);
    expect(value(text, 'meshnet_dns_answers_total{rcode="NOERROR"}')).toBe(5);
    expect(value(text, 'meshnet_dns_answers_total{rcode="NXDOMAIN"}')).toBe(1);
    expect(value(text, 'meshnet_dns_answers_total{rcode="SERVFAIL"}')).toBe(0);
    expect(value(text, 'meshnet_dns_dropped_total')).toBe(1);
  });

  it('measures how long a store change waits for a pass that applies it', async () => {
    const { m, tick, setRevision } = fixture();
    m.passFinished(pass(10));
    tick(2000);
    setRevision(11);
    m.storeChanged();
    tick(1500);
    let text = await m.registry.metrics();
    expect(value(text, 'meshnet_store_watch_lag_seconds')).toBe(1.5);
    expect(value(text, 'meshnet_store_last_change_age_seconds')).toBe(1.5);
    expect(value(text, 'meshnet_store_revision')).toBe(11);
    // A pass that started before the change does not clear it; the one that applies revision 11 does.
    m.passFinished(pass(10));
    expect(value(await m.registry.metrics(), 'meshnet_store_watch_lag_seconds')).toBe(1.5);
    m.passFinished(pass(11));
    text = await m.registry.metrics();
    expect(value(text, 'meshnet_store_watch_lag_seconds')).toBe(0);
    expect(value(text, 'meshnet_applied_revision')).toBe(11);
    expect(value(text, 'meshnet_store_connected')).toBe(1);
  });
});
