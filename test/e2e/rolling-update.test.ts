import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { startProbe } from '../../src/lab/probe-run.js';
import type { ProbeReport } from '../../src/lab/probe-outcome.js';
import { taskVersion } from '../../src/model/rolling-update.js';
import * as keys from '../../src/model/keys.js';
import type { KvStore } from '../../src/store/kv-store.js';

// Issue 13 items 1-2 end to end: a client opens a new connection every 20 ms to a published port while
// `service update --update-parallelism 1` replaces the command of a 3-replica service (stop-first), while
// `service rollback` returns to it (start-first, all at once: --rollback-order start-first), and while a
// start-first update replaces it all at once; for both start-first rollouts, every store revision must show
// at least 3 tasks running (stop-first all at once would show 0). The new commands set MESHNET_NODE for the
// echo app, so its answers read "web.N on v2" or "on v3": answers are told apart by the node they name.
// Timings are short (--drain-seconds 1, --lease-ttl 3) so the file stays near 45 s on a loaded machine.

const PORT = 8400;
const OLD = [process.execPath, ECHO_HTTP, '--port', '80'];
const V2 = ['env', 'MESHNET_NODE=v2', ...OLD];
const V3 = ['env', 'MESHNET_NODE=v3', ...OLD];

let lab: Lab;
let cl: ClusterLab;
let client: string;

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'rolling-update' });
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1']);
  [client] = await Promise.all([lab.addClient('client', '192.0.2.100'), cl.startAll()]);
  const r = await cl.cliAsync(['service', 'create', '--name', 'web', '--replicas', '3', '-p', `${PORT}:80`, '--rollback-order', 'start-first', '--rollback-parallelism', '0', '--', ...OLD]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

interface Run {
  cli: { code: number; stderr: string; ms: number };
  report: ProbeReport;
  after: number;
  /** The fewest and the most tasks running (ready, not draining) at any store revision during the command. */
  running: { min: number; max: number; revisions: number };
}

/** Runs `args` (a CLI command that waits for its rollout) under a probe and a store watch. */
async function underProbe(args: string[]): Promise<Run> {
  const probe = startProbe(lab, client, { target: `${lab.hosts[0]!.underlayIp}:${PORT}`, maxMs: 90_000, intervalMs: 20, timeoutMs: 1000 });
  await probe.waitForAttempts(25, 30_000);
  return cl.withCluster(async (_c, store) => {
    const watch = await watchRunning(store);
    const cli = await cl.cliAsync(args, 90_000);
    const after = Date.now();
    const running = watch.stop();
    // Half a second more: connections after the rollout reach only tasks of the version it ended at.
    await new Promise((r) => setTimeout(r, 500));
    return { cli, report: await probe.stop(), after, running };
  });
}

/** Counts web's running tasks at every store revision from now on (a txn's events count once, together). */
async function watchRunning(store: KvStore): Promise<{ stop: () => Run['running'] }> {
  const prefix = keys.serviceTasksPrefix('web');
  const { kvs, revision } = await store.range(prefix);
  const tasks = new Map(kvs.map((kv) => [kv.key, kv.value]));
  // By task id: a txn that moves a successor to its slot's key may show it at both keys for one revision.
  const running = () => new Set([...tasks.values()].map((v) => JSON.parse(v) as { id: string; state: string; desiredState: string }).filter((t) => t.state === 'running' && t.desiredState === 'running').map((t) => t.id)).size;
  const seen = { min: running(), max: running(), revisions: 1 };
  let pending = false;
  const settle = () => {
    pending = false;
    const n = running();
    seen.min = Math.min(seen.min, n);
    seen.max = Math.max(seen.max, n);
    seen.revisions++;
  };
  // SQLite gives each op of a txn its own revision but delivers a txn's events together: count once they are in.
  const handle = await store.watch(prefix, { fromRevision: revision + 1 }, (e) => {
    if (e.type === 'delete') tasks.delete(e.key);
    else tasks.set(e.key, e.value!);
    if (!pending) setImmediate(settle);
    pending = true;
  });
  return {
    stop: () => {
      handle.close();
      settle();
      return seen;
    },
  };
}

const failures = (r: ProbeReport) => r.attempts.filter((a) => a.outcome !== 'ok').map((a) => `${a.outcome} ${a.detail ?? ''} at +${a.t - r.startedAt} ms`);
const isOld = (node: string | undefined) => node?.startsWith('host-') === true;

async function serviceState(): Promise<{ version: number; state: string | undefined; versions: number[]; running: number }> {
  return cl.withCluster(async (c) => {
    const [service, tasks] = await Promise.all([c.getService('web'), c.listTasks({ service: 'web' })]);
    return {
      version: service!.version ?? 0,
      state: service!.updateStatus?.state,
      versions: tasks.map(taskVersion),
      running: tasks.filter((t) => t.state === 'running' && t.desiredState === 'running').length,
    };
  });
}

describe('rolling update under a fresh-connection probe', () => {
  it('replaces the command one task at a time (stop-first) with 0 failed requests, answering old then new', async () => {
    const { cli, report, after } = await underProbe(['service', 'update', 'web', '--update-parallelism', '1', '--update-monitor', '30s', '--', ...V2]);
    expect(cli.code, cli.stderr).toBe(0);
    console.log(`update: ${report.attempts.length} requests in ${cli.ms} ms, ${failures(report).length} failed`);
    expect(failures(report)).toEqual([]);
    const nodes = report.attempts.map((a) => a.node);
    expect(nodes.some(isOld)).toBe(true);
    expect(nodes.some((n) => n === 'v2')).toBe(true);
    expect(report.attempts.filter((a) => a.t > after).every((a) => a.node === 'v2')).toBe(true);
    expect(await serviceState()).toEqual({ state: 'completed', version: 1, versions: [1, 1, 1], running: 3 });
  }, 120_000);

  it('service inspect shows the update status and the previous spec', async () => {
    const r = await cl.cliAsync(['service', 'inspect', 'web', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const view = JSON.parse(r.stdout) as { updateStatus: { state: string }; previousSpec: { command: string[] }; tasks: { specVersion: number }[] };
    expect(view.updateStatus.state).toBe('completed');
    expect(view.previousSpec.command).toEqual(OLD);
    expect(view.tasks.map((t) => t.specVersion)).toEqual([1, 1, 1]);
  });

  it('service rollback (start-first, all at once) returns to the old answers with 0 failed requests, never under 3 running', async () => {
    const { cli, report, after, running } = await underProbe(['service', 'rollback', 'web']);
    expect(cli.code, cli.stderr).toBe(0);
    console.log(`rollback: ${report.attempts.length} requests in ${cli.ms} ms, ${failures(report).length} failed, running ${running.min}..${running.max} over ${running.revisions} revisions`);
    expect(failures(report)).toEqual([]);
    expect(report.attempts.some((a) => a.node === 'v2')).toBe(true);
    expect(report.attempts.filter((a) => a.t > after).every((a) => isOld(a.node))).toBe(true);
    expect(running.min).toBe(3);
    expect(running.max).toBeGreaterThan(3);
    expect(await serviceState()).toEqual({ state: 'rollback_completed', version: 0, versions: [0, 0, 0], running: 3 });
  }, 120_000);

  it('a start-first update never runs fewer than 3 tasks, with 0 failed requests', async () => {
    const { cli, report, after, running } = await underProbe(['service', 'update', 'web', '--update-order', 'start-first', '--update-parallelism', '0', '--', ...V3]);
    expect(cli.code, cli.stderr).toBe(0);
    console.log(`start-first update: ${report.attempts.length} requests in ${cli.ms} ms, ${failures(report).length} failed, running ${running.min}..${running.max} over ${running.revisions} revisions`);
    expect(failures(report)).toEqual([]);
    expect(report.attempts.some((a) => isOld(a.node))).toBe(true);
    expect(report.attempts.some((a) => a.node === 'v3')).toBe(true);
    expect(report.attempts.filter((a) => a.t > after).every((a) => a.node === 'v3')).toBe(true);
    expect(running.min).toBe(3);
    expect(running.max).toBeGreaterThan(3);
    expect(await serviceState()).toEqual({ state: 'completed', version: 2, versions: [2, 2, 2], running: 3 });
  }, 120_000);
});
