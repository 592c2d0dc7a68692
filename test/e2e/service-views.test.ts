import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab } from '../lab/lab.js';
import { ClusterLab, compiledRoot, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { execIn } from '../../src/sandbox/exec.js';
import type { TaskRecord } from '../../src/model/records.js';

// Issue 13 items 6 and 7 as an operator meets them on 2 hosts: a network alias answered on its network only,
// a crashing task's error and history in `service ps`, and `service ls -q --filter`.

/**
 * The DNS tests' fake upstream: NXDOMAIN for every name outside .example, so a name we do not serve ends there.
 * It listens on 127.0.0.53 inside the task that asks (the agents forward there), as in test/dns/resolver.test.ts.
 */
const FAKE_UPSTREAM = join(compiledRoot, 'test/dns/lab-client.js');
const UPSTREAM_IP = '127.0.0.53';

let lab: Lab;
let cl: ClusterLab;
let upstream: ChildProcess;
let frontVip: string;

const pidOf = (t: TaskRecord) => Number(readFileSync(`${lab.root}/${t.node}/state/tasks/${t.id}/pid`, 'utf8'));
const taskOf = async (service: string) => (await cl.withCluster((c) => c.listTasks({ service })))[0]!;

/** Runs a command inside a task's network and mount namespaces, as `docker exec` would. */
function inTask(t: TaskRecord, argv: string[]) {
  return execIn(null, ['nsenter', `--target=${pidOf(t)}`, '--net', '--mount', '--', ...argv], { allowFailure: true, timeoutMs: 30_000 });
}

/** Asks the task's resolver; the status and the answers. */
async function dig(t: TaskRecord, name: string): Promise<{ status: string; answers: string[] }> {
  const out = (await inTask(t, ['dig', '+time=3', '+tries=1', '+noall', '+comments', '+answer', '@127.0.0.11', name])).stdout;
  const answers = out.split('\n').filter((l) => /\sIN\s+A\s/.test(l)).map((l) => l.trim().split(/\s+/).pop()!);
  return { status: /status: (\w+)/.exec(out)?.[1] ?? `no answer: ${out}`, answers: answers.sort() };
}

beforeAll(async () => {
  lab = await Lab.create(2, { tag: 'svc-views' });
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1', '--dns-upstream', UPSTREAM_IP]);
  await cl.startAll();
  // Independent commands run side by side: a CLI start costs seconds on a loaded machine.
  const ok = (r: { code: number; stderr: string }) => expect(r.code, r.stderr).toBe(0);
  (await Promise.all([cl.cliAsync(['network', 'create', 'front', '--subnet', '10.0.31.0/24']), cl.cliAsync(['network', 'create', 'back', '--subnet', '10.0.32.0/24'])])).forEach(ok);
  const creates = [
    ['--name', 'api', '--replicas', '2', '--network', 'name=front,alias=api-v2', '--network', 'back', '--', process.execPath, ECHO_HTTP, '--port', '80'],
    ['--name', 'other', '--network', 'back', '--', process.execPath, ECHO_HTTP, '--port', '80'],
    ['--name', 'crash', '--', 'sh', '-c', 'exit 1'],
  ];
  (await Promise.all(creates.map((args) => cl.cliAsync(['service', 'create', '-d', ...args])))).forEach(ok);
  await cl.waitFor('api and other to run, crash to fail', 60_000, async (c) => {
    const tasks = await c.listTasks();
    const state = (s: string) => tasks.filter((t) => t.service === s).map((t) => t.state);
    return state('api').join() === 'running,running' && state('other').join() === 'running' && state('crash').join() === 'failed';
  });
  frontVip = (await cl.withCluster((c) => c.getService('api')))!.vips['front']!;
  const other = await taskOf('other');
  upstream = lab.spawn(lab.hosts[0]!.netns, ['nsenter', `--target=${pidOf(other)}`, '--net', '--', process.execPath, FAKE_UPSTREAM, 'upstream', UPSTREAM_IP, '192.0.2.77']);
  await new Promise<void>((resolve, reject) => {
    upstream.stdout!.once('data', () => resolve());
    upstream.once('exit', (code) => reject(new Error(`the fake upstream exited (${code})`)));
  });
}, 120_000);

afterAll(async () => {
  upstream?.kill();
  await cl?.stopAll();
  await lab?.destroy();
});

describe('network aliases', () => {
  it('answer on their network: the VIP there, tasks.<alias> the task addresses, and a connection by the alias works', async () => {
    const api = await cl.withCluster((c) => c.listTasks({ service: 'api' }));
    const from = api[0]!;
    expect(await dig(from, 'api-v2')).toEqual({ status: 'NOERROR', answers: [frontVip] });
    expect(await dig(from, 'tasks.api-v2')).toEqual({ status: 'NOERROR', answers: api.map((t) => t.addresses['front']!.ip).sort() });
    expect((await inTask(from, ['curl', '-s', '-m', '3', 'http://api-v2/'])).stdout).toMatch(/^api\.\d on host-/);
  });

  it('are not answered on the service\'s other network: NXDOMAIN there, while the service\'s name resolves', async () => {
    const other = await taskOf('other');
    const back = (await cl.withCluster((c) => c.getService('api')))!.vips['back']!;
    expect(await dig(other, 'api')).toEqual({ status: 'NOERROR', answers: [back] });
    expect((await dig(other, 'api-v2')).status).toBe('NXDOMAIN');
    expect((await dig(other, 'tasks.api-v2')).status).toBe('NXDOMAIN');
  });

  it('cannot be taken by another service on the same network', () => {
    const r = cl.cli(['service', 'create', '-d', '--name', 'dup', '--network', 'front', '--network-alias', 'api-v2', '--', 'sleep', '1000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/alias "api-v2" on network front is already an alias of service api/);
  });
});

describe('service ps and service ls', () => {
  it('service ps shows a crashed task failed with its error, and its earlier runs as history lines', async () => {
    const r = cl.cli(['service', 'ps', 'crash']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR$/);
    expect(lines[1]).toMatch(/^[0-9a-f]{12}\s+crash\.1\s+host-\w\s+Running\s+Failed .* ago\s+"exit 1"$/);
    const history = lines.slice(2);
    expect(history.length).toBeGreaterThan(0);
    expect(history.length).toBeLessThanOrEqual(4);
    for (const l of history) expect(l).toMatch(/^[0-9a-f]{12}\s+\\_ crash\.1\s+host-\w\s+Shutdown\s+Failed .* ago\s+"exit 1"$/);
  });

  it('service ps of several services, filtered to the tasks that should run, ids only', () => {
    const r = cl.cli(['service', 'ps', '-q', '--filter', 'desired-state=running', 'api', 'other']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('service ls: -q, and --filter name= with MODE and REPLICAS', async () => {
    const [all, filtered] = await Promise.all([cl.cliAsync(['service', 'ls', '-q']), cl.cliAsync(['service', 'ls', '--filter', 'name=cr', '--filter', 'name=ap'])]);
    expect(all.stdout).toBe('api\ncrash\nother\n');
    expect(filtered.stdout).toMatch(/^NAME\s+MODE\s+REPLICAS\s+PORTS\s+COMMAND\napi\s+replicated\s+2\/2\s+.*echo-http.*\ncrash\s+replicated\s+0\/1\s+sh -c exit 1\n$/);
  });
});
