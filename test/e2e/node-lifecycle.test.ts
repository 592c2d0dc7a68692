import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { startProbe } from '../../src/lab/probe-run.js';
import { execIn } from '../../src/sandbox/exec.js';
import { INGRESS_ENDPOINTS } from '../../src/agent/ingress-endpoint.js';
import type { TaskRecord } from '../../src/model/records.js';

// Issue 12 item 3 as an operator meets it, on 3 lab hosts with real agents: draining a node moves its
// tasks through the drain path without one failed request; a dead node stays in `node ls` as down
// until `node rm`, which frees what it held.

const PORT = 8400;
let lab: Lab;
let cl: ClusterLab;
let client: string;

type NodeRow = { id: string; status: string; availability: string; runningTasks: number };
const nodeRows = (): NodeRow[] => JSON.parse(cl.cli(['node', 'ls', '--json']).stdout) as NodeRow[];
const webTasks = (): Promise<TaskRecord[]> => cl.withCluster((c) => c.listTasks({ service: 'web' }));

/** When `host`'s agent logged `event` for task `id` (ms since the epoch), or undefined. */
function loggedAt(host: string, event: string, id: string): number | undefined {
  for (const line of readFileSync(`${lab.root}/${host}/agent.log`, 'utf8').split('\n')) {
    if (!line.includes(`"event":"${event}"`) || !line.includes(id)) continue;
    const entry = JSON.parse(line) as { time: string; task?: string };
    if (entry.task === id) return Date.parse(entry.time);
  }
  return undefined;
}

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'node-life' });
  client = await lab.addClient('client', '192.0.2.100');
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '2']);
  await cl.startAll();
  const r = cl.cli(['service', 'create', '--name', 'web', '--replicas', '3', '-p', `${PORT}:80`, '--', process.execPath, ECHO_HTTP, '--port', '80']);
  expect(r.code, r.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

describe('node lifecycle', () => {
  it('node update --availability drain moves the node\'s tasks elsewhere with 0 failed requests', async () => {
    const before = await webTasks();
    expect(before.map((t) => t.node).sort()).toEqual(['host-a', 'host-b', 'host-c']);
    const hostB = lab.hosts[1]!;
    const old = before.find((t) => t.node === hostB.name)!;
    const movedSlot = old.slot;
    // Fresh connections through host-a's published port, one every 20 ms, for as long as the move takes.
    const probe = startProbe(lab, client, { target: `${lab.hosts[0]!.underlayIp}:${PORT}`, maxMs: 90_000, intervalMs: 20, timeoutMs: 1000 });
    await probe.waitForAttempts(50);
    const drain = cl.cli(['node', 'update', '--availability', 'drain', hostB.name]);
    expect(drain.code, drain.stderr).toBe(0);
    expect(drain.stdout).toMatch(/availability drain/);
    await cl.waitFor('web to run 3 replicas, none on host-b', 60_000, async (c) => {
      const tasks = await c.listTasks({ service: 'web' });
      return tasks.length === 3 && tasks.every((t) => t.node !== hostB.name && t.state === 'running' && t.desiredState === 'running');
    });
    // The probe goes on until the moved replica answers through host-a, so it covers the whole move.
    const moved = (await webTasks()).find((t) => t.slot === movedSlot)!;
    const answer = `web.${movedSlot} on ${moved.node}`;
    let seen = false;
    for (let i = 0; i < 200 && !seen; i++) {
      const r = await execIn(client, ['curl', '-s', '-m', '1', `http://${lab.hosts[0]!.underlayIp}:${PORT}/`], { allowFailure: true, timeoutMs: 5000 });
      seen = r.stdout.startsWith(answer);
    }
    expect(seen, `${answer} never answered through host-a`).toBe(true);
    const report = await probe.stop();
    const failed = report.attempts.filter((a) => a.outcome !== 'ok');
    const answeredByB = report.attempts.filter((a) => a.node === hostB.name).length;
    const byNode: Record<string, number> = {};
    for (const a of report.attempts) if (a.node) byNode[a.node] = (byNode[a.node] ?? 0) + 1;
    console.log(JSON.stringify({ event: 'node_lifecycle.drain_probe', attempts: report.attempts.length, failed: failed.length, seconds: Math.round((report.endedAt - report.startedAt) / 100) / 10, answeredBy: byNode }));
    expect(failed, JSON.stringify(failed.slice(0, 5))).toEqual([]);
    expect(report.attempts.length).toBeGreaterThan(200);
    // host-b answered before the drain and not after its task was gone: the probe saw the move happen.
    expect(answeredByB).toBeGreaterThan(0);
    expect(report.attempts.slice(-20).some((a) => a.node === hostB.name)).toBe(false);
    expect(await cl.withCluster((c) => c.listTasks({ node: hostB.name }))).toEqual([]);
    // Through the drain path: host-b drained its task (weight 0), stopped and removed it, and only then was
    // the slot claimed on another node.
    const drained = loggedAt(hostB.name, 'task.draining', old.id);
    const removed = loggedAt(hostB.name, 'task.removed', old.id);
    const claimed = loggedAt(moved.node, 'task.claimed', moved.id);
    expect([drained, removed, claimed].every((t) => t !== undefined), `drained ${drained}, removed ${removed}, claimed ${claimed}`).toBe(true);
    expect(removed! - drained!).toBeGreaterThanOrEqual(2000);
    expect(claimed!).toBeGreaterThanOrEqual(removed!);
    // The drained node stays live (it still routes published ports) and shows what it is.
    expect(nodeRows().find((n) => n.id === hostB.name)).toMatchObject({ status: 'ready', availability: 'drain', runningTasks: 0 });
    const ls = cl.cli(['node', 'ls']);
    expect(ls.stdout).toMatch(/host-b\s+ready\s+drain\s+192\.0\.2\.2\s+\S+\s+0/);
  });

  it('a paused node keeps its task and takes no new one: a scale-up goes to the active nodes', async () => {
    // After the drain host-a and host-c share 3 replicas: pause the one with a single replica, which an
    // even spread of 6 over 3 nodes would give one more.
    const tasks = await webTasks();
    const paused = ['host-a', 'host-c'].find((n) => tasks.filter((t) => t.node === n).length === 1)!;
    const kept = tasks.filter((t) => t.node === paused).map((t) => t.id);
    expect(cl.cli(['node', 'update', '--availability', 'pause', paused]).code).toBe(0);
    expect(cl.cli(['node', 'update', '--availability', 'active', 'host-b']).code).toBe(0);
    const r = cl.cli(['service', 'scale', 'web=6']);
    expect(r.code, r.stderr).toBe(0);
    await cl.waitFor('web to run 6 replicas with host-b active again', 60_000, async (c) => {
      const now = await c.listTasks({ service: 'web' });
      return now.length === 6 && now.every((t) => t.state === 'running' && t.desiredState === 'running') && now.some((t) => t.node === 'host-b');
    });
    expect((await webTasks()).filter((t) => t.node === paused).map((t) => t.id)).toEqual(kept);
    expect(nodeRows().find((n) => n.id === paused)).toMatchObject({ status: 'ready', availability: 'pause', runningTasks: 1 });
    expect(cl.cli(['node', 'update', '--availability', 'active', paused]).code).toBe(0);
  });

  it('a dead node stays listed as down until node rm, which frees its ingress address', async () => {
    const dead = lab.hosts[2]!;
    const endpointKey = `${INGRESS_ENDPOINTS}${dead.name}`;
    const endpoint = await cl.withCluster(async (_c, s) => (await s.get(endpointKey))?.value);
    expect(endpoint).toBeDefined();
    const refused = cl.cli(['node', 'rm', dead.name]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is live.*--force/);
    await cl.stopAgent(dead.name, 'SIGKILL');
    await cl.waitFor('host-c to be down', 30_000, async (c) => (await c.getNode(dead.name)) === undefined);
    expect(nodeRows().find((n) => n.id === dead.name)).toMatchObject({ status: 'down', availability: 'active' });
    expect(cl.cli(['node', 'ls']).stdout).toMatch(/host-c\s+down\s+active\s+192\.0\.2\.3\s+-\s+\d/);
    const inspect = cl.cli(['node', 'inspect', dead.name]);
    expect(inspect.stdout).toMatch(/STATUS:\s+down/);
    const rm = cl.cli(['node', 'rm', dead.name]);
    expect(rm.code, rm.stderr).toBe(0);
    const ip = (JSON.parse(endpoint!) as { ip: string }).ip;
    expect(rm.stdout).toContain(`ingress address ${ip} released`);
    expect(nodeRows().map((n) => n.id)).toEqual(['host-a', 'host-b']);
    expect(await cl.withCluster(async (_c, s) => (await s.get(endpointKey))?.value)).toBeUndefined();
    // Its replicas run on the live nodes.
    await cl.waitFor('web to run 6 replicas on host-a and host-b', 60_000, async (c) => {
      const tasks = await c.listTasks({ service: 'web' });
      return tasks.length === 6 && tasks.every((t) => t.node !== dead.name && t.state === 'running');
    });
  });
});
