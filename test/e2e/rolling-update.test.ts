import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { startProbe } from '../../src/lab/probe-run.js';
import type { ProbeReport } from '../../src/lab/probe-outcome.js';
import { taskVersion } from '../../src/model/rolling-update.js';

// Issue 13 items 1-2 end to end: a client opens a new connection every 20 ms to a published port while
// `service update --update-parallelism 1` replaces the command of a 3-replica service, then while `service
// rollback` returns to it. The new command sets MESHNET_NODE=v2 for the echo app, so its answers read
// "web.N on v2": old and new answers are told apart by the node they name.

const PORT = 8400;
const OLD = [process.execPath, ECHO_HTTP, '--port', '80'];
const NEW = ['env', 'MESHNET_NODE=v2', ...OLD];

let lab: Lab;
let cl: ClusterLab;
let client: string;

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'rolling-update' });
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1']);
  await cl.startAll();
  client = await lab.addClient('client', '192.0.2.100');
  const r = cl.cli(['service', 'create', '--name', 'web', '--replicas', '3', '-p', `${PORT}:80`, '--', ...OLD]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

/** Runs `args` (a CLI command that waits for its rollout) under a probe; returns the CLI result and the probe report. */
async function underProbe(args: string[]): Promise<{ cli: { code: number; stderr: string; ms: number }; report: ProbeReport; after: number }> {
  const probe = startProbe(lab, client, { target: `${lab.hosts[0]!.underlayIp}:${PORT}`, maxMs: 90_000, intervalMs: 20, timeoutMs: 1000 });
  await probe.waitForAttempts(25, 30_000);
  const cli = await cl.cliAsync(args, 90_000);
  const after = Date.now();
  // Half a second more: connections after the rollout reach only tasks of the version it ended at.
  await new Promise((r) => setTimeout(r, 500));
  return { cli, report: await probe.stop(), after };
}

const failures = (r: ProbeReport) => r.attempts.filter((a) => a.outcome !== 'ok').map((a) => `${a.outcome} ${a.detail ?? ''} at +${a.t - r.startedAt} ms`);
const isNew = (node: string | undefined) => node === 'v2';

async function tasksAtServiceVersion(): Promise<{ version: number; state: string | undefined; versions: number[]; running: number }> {
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
  it('replaces the command one task at a time with 0 failed requests, answering old then new', async () => {
    const { cli, report, after } = await underProbe(['service', 'update', 'web', '--update-parallelism', '1', '--update-monitor', '30s', '--', ...NEW]);
    expect(cli.code, cli.stderr).toBe(0);
    console.log(`update: ${report.attempts.length} requests in ${cli.ms} ms, ${failures(report).length} failed`);
    expect(failures(report)).toEqual([]);
    const nodes = report.attempts.map((a) => a.node);
    expect(nodes.some((n) => !isNew(n))).toBe(true);
    expect(nodes.some(isNew)).toBe(true);
    expect(report.attempts.filter((a) => a.t > after).every((a) => isNew(a.node))).toBe(true);
    const s = await tasksAtServiceVersion();
    expect(s.state).toBe('completed');
    expect(s.version).toBe(1);
    expect(s.versions).toEqual([1, 1, 1]);
    expect(s.running).toBe(3);
  }, 120_000);

  it('service inspect shows the update status and the previous spec', () => {
    const r = cl.cli(['service', 'inspect', 'web', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const view = JSON.parse(r.stdout) as { updateStatus: { state: string }; previousSpec: { command: string[] }; tasks: { specVersion: number }[] };
    expect(view.updateStatus.state).toBe('completed');
    expect(view.previousSpec.command).toEqual(OLD);
    expect(view.tasks.map((t) => t.specVersion)).toEqual([1, 1, 1]);
  });

  it('service rollback returns to the old answers, also with 0 failed requests', async () => {
    const { cli, report, after } = await underProbe(['service', 'rollback', 'web']);
    expect(cli.code, cli.stderr).toBe(0);
    console.log(`rollback: ${report.attempts.length} requests in ${cli.ms} ms, ${failures(report).length} failed`);
    expect(failures(report)).toEqual([]);
    expect(report.attempts.some((a) => isNew(a.node))).toBe(true);
    expect(report.attempts.filter((a) => a.t > after).every((a) => !isNew(a.node) && a.node?.startsWith('host-'))).toBe(true);
    const s = await tasksAtServiceVersion();
    expect(s.state).toBe('rollback_completed');
    expect(s.version).toBe(0);
    expect(s.versions).toEqual([0, 0, 0]);
  }, 120_000);
});
