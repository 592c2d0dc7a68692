import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP, ECHO_UDP } from '../../src/lab/cluster-lab.js';
import { execIn } from '../../src/sandbox/exec.js';
import type { TaskRecord } from '../../src/model/records.js';
import { taskNetnsName } from '../../src/agent/node-plan.js';

// Issue 3 as a user meets it: agents on 3 hosts, an overlay network, a 3-replica service;
// tasks reach each other; an agent restarts without disturbing anything; a dead node's replicas move.

let lab: Lab;
let cl: ClusterLab;
let tasks: TaskRecord[];
let vip: string;

const pidOf = (t: TaskRecord) => Number(readFileSync(`${lab.root}/${t.node}/state/tasks/${t.id}/pid`, 'utf8'));

/** Runs a command inside a task's network and mount namespaces, as `docker exec` would. */
function inTask(t: TaskRecord, argv: string[]) {
  return execIn(null, ['nsenter', `--target=${pidOf(t)}`, '--net', '--mount', '--', ...argv], { allowFailure: true, timeoutMs: 30_000 });
}

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'cluster-e2e' });
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1']);
  await cl.startAll();
  expect(cl.cli(['network', 'create', 'appnet', '--subnet', '10.0.7.0/24']).code).toBe(0);
  const r = cl.cli(['service', 'create', '--name', 'api', '--replicas', '3', '--network', 'appnet', '-p', '8300:80', '--', process.execPath, ECHO_HTTP, '--port', '80']);
  expect(r.code, r.stderr).toBe(0);
  tasks = await cl.withCluster((c) => c.listTasks({ service: 'api' }));
  vip = (await cl.withCluster((c) => c.getService('api')))!.vips['appnet']!;
}, 240_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

describe('agents on three hosts', () => {
  it('places one replica on each host, with an address on the overlay', () => {
    expect(tasks.map((t) => t.node).sort()).toEqual(['host-a', 'host-b', 'host-c']);
    for (const t of tasks) expect(t.addresses['appnet']!.ip).toMatch(/^10\.0\.7\./);
    const ls = cl.cli(['task', 'ls']);
    expect(ls.stdout).toMatch(/api\.1\s+host-\w\s+running\s+running/);
  });

  it("isolates task legs on the host bridge from each other; the ingress sandbox's leg is not isolated", async () => {
    const links = (await execIn(lab.hosts[0]!.netns, ['bridge', '-d', 'link', 'show'])).stdout;
    const isolated = (name: RegExp) => links.split(/\n(?=\d+:)/).filter((l) => name.test(l)).map((l) => /isolated on/.test(l));
    expect(isolated(/^\d+: mg[0-9a-f]{11}@/).length).toBeGreaterThan(0);
    expect(isolated(/^\d+: mg[0-9a-f]{11}@/).every(Boolean)).toBe(true);
    expect(isolated(/^\d+: mn-sbox@/)).toEqual([false]);
  });

  it('tasks reach each other directly over the overlay', async () => {
    for (const from of tasks) {
      for (const to of tasks.filter((t) => t !== from)) {
        const out = await inTask(from, ['curl', '-s', '-m', '3', `http://${to.addresses['appnet']!.ip}/`]);
        expect(out.stdout).toContain(`api.${to.slot} on ${to.node} (client ${from.addresses['appnet']!.ip})`);
      }
    }
  });

  it('the VIP spreads a task\'s connections over every replica, keeping the client address', async () => {
    const from = tasks[0]!;
    const out = await inTask(from, ['sh', '-c', `for i in $(seq 30); do curl -s -m 3 http://${vip}/; echo; done`]);
    const lines = out.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    expect(lines).toHaveLength(30);
    expect(new Set(lines.map((l) => l.split(' ')[0]))).toEqual(new Set(['api.1', 'api.2', 'api.3']));
    expect(lines.every((l) => l.endsWith(`(client ${from.addresses['appnet']!.ip})`))).toBe(true);
  });

  it('names resolve on 127.0.0.11 inside a task', async () => {
    const t = tasks[1]!;
    expect((await inTask(t, ['cat', '/etc/resolv.conf'])).stdout).toMatch(/nameserver 127\.0\.0\.11[\s\S]*ndots:0/);
    expect((await inTask(t, ['dig', '+short', '@127.0.0.11', 'api'])).stdout.trim()).toBe(vip);
    const all = (await inTask(t, ['dig', '+short', '@127.0.0.11', 'tasks.api'])).stdout.trim().split('\n').sort();
    expect(all).toEqual(tasks.map((x) => x.addresses['appnet']!.ip).sort());
    const viaName = await inTask(t, ['curl', '-s', '-m', '3', 'http://api/']);
    expect(viaName.stdout).toMatch(/^api\.\d on host-/);
  });

  it('a task may serve port 53 itself: the resolver sits behind NAT on a port of its own, as Docker does', async () => {
    const r = cl.cli(['service', 'create', '--name', 'ns53', '--replicas', '1', '--network', 'appnet', '-p', 'mode=host,5399:53/udp', '--', process.execPath, ECHO_UDP, '--port', '53']);
    expect(r.code, r.stderr).toBe(0);
    const [t] = await cl.withCluster((c) => c.listTasks({ service: 'ns53' }));
    expect(t).toMatchObject({ state: 'running', restarts: 0 });
    // The task's own :53 answers on its addresses; 127.0.0.11:53 still answers names.
    expect((await inTask(t!, ['dig', '+short', '@127.0.0.11', 'api'])).stdout.trim()).toBe(vip);
    const echo = await inTask(t!, ['sh', '-c', `echo hi | socat -T2 - UDP:${t!.addresses['appnet']!.ip}:53`]);
    expect(echo.stdout).toContain('ns53.1');
    expect((await cl.withCluster((c) => c.listTasks({ service: 'ns53' })))[0]!.restarts).toBe(0);
    expect(cl.cli(['service', 'rm', 'ns53']).code).toBe(0);
  });

  it('a service that publishes nothing is reached by name on its VIP, at whatever port it listens on', async () => {
    const r = cl.cli(['service', 'create', '--name', 'cache', '--replicas', '2', '--network', 'appnet', '--', process.execPath, ECHO_HTTP, '--port', '6379']);
    expect(r.code, r.stderr).toBe(0);
    const from = tasks[0]!;
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const out = await inTask(from, ['curl', '-s', '-m', '2', 'http://cache:6379/']);
      const m = /^(cache\.\d) on host-/.exec(out.stdout);
      if (m) seen.add(m[1]!);
      else await new Promise((res) => setTimeout(res, 250));
    }
    expect([...seen].sort()).toEqual(['cache.1', 'cache.2']);
    expect(cl.cli(['service', 'rm', 'cache']).code).toBe(0);
  });

  it('task attach wires a namespace made by another runtime into the service, and detach unwires it', async () => {
    const ns = lab.netns('ext-web', 0);
    lab.spawn(ns, [process.execPath, ECHO_HTTP, '--port', '80'], { MESHNET_TASK_NAME: 'external', MESHNET_NODE: 'host-a' });
    const r = cl.cli(['task', 'attach', '--service', 'api', '--node', 'host-a', '--netns', ns]);
    expect(r.code, r.stderr).toBe(0);
    const m = /attached .* as (api\.\d+) on host-a: .*appnet=(\S+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    const from = tasks.find((t) => t.node === 'host-b')!;
    let seen = false;
    for (let i = 0; i < 40 && !seen; i++) {
      const out = await inTask(from, ['sh', '-c', `for i in $(seq 8); do curl -s -m 2 http://${vip}/; echo; done`]);
      seen = out.stdout.includes('external on host-a');
      if (!seen) await new Promise((res) => setTimeout(res, 250));
    }
    expect(seen).toBe(true);
    expect((await inTask(from, ['curl', '-s', '-m', '2', `http://${m![2]}/`])).stdout).toContain('external on host-a');
    expect(cl.cli(['task', 'detach', m![1]!]).code).toBe(0);
    const deadline = Date.now() + 20_000;
    let links = '';
    do {
      await new Promise((res) => setTimeout(res, 300));
      links = (await execIn(ns, ['ip', '-o', 'addr'])).stdout;
    } while (links.includes(m![2]!) && Date.now() < deadline);
    expect(links).not.toContain(m![2]!);
    for (const h of lab.hosts.slice(1)) {
      let neigh = '';
      do {
        neigh = (await execIn(h.dir.path('ov-appnet'), ['ip', 'neigh', 'show', 'dev', 'vxlan0'])).stdout;
        if (neigh.includes(`${m![2]} `)) await new Promise((res) => setTimeout(res, 300));
      } while (neigh.includes(`${m![2]} `) && Date.now() < deadline + 10_000);
      expect(neigh, `${h.name} still has the detached task as a peer`).not.toContain(`${m![2]} `);
    }
    expect(cl.cli(['task', 'detach', 'api.1']).stderr).toMatch(/not an attached task/);
  });

  it('an agent restart adopts tasks and kernel state without recreating anything', async () => {
    const t = tasks.find((x) => x.node === 'host-b')!;
    const pid = pidOf(t);
    // The keeper takes the resolver's sockets a moment after they are bound.
    const kept = () => existsSync(`${lab.root}/host-b/state/resolver-sockets.json`) && readFileSync(`${lab.root}/host-b/state/resolver-sockets.json`, 'utf8').includes(`/${taskNetnsName(t.id)}"`);
    for (const since = Date.now(); !kept(); await new Promise((r) => setTimeout(r, 50))) expect(Date.now() - since, 'no keeper holds the resolver sockets').toBeLessThan(10_000);
    await cl.stopAgent('host-b', 'SIGTERM');
    const logBefore = readFileSync(`${lab.root}/host-b/agent.log`, 'utf8').length;
    // A lookup while no agent runs (a timeout longer than the restart takes on a loaded machine): it waits in the resolver's socket,
    // which the keeper holds, and the next agent answers it.
    const lookup = inTask(t, ['dig', '+time=15', '+tries=1', '+short', '@127.0.0.11', 'api']);
    const queued = async () => (await inTask(t, ['cat', '/proc/net/udp'])).stdout.split('\n').some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1]?.startsWith('0B00007F:') === true && parseInt(f[4]?.split(':')[1] ?? '0', 16) > 0;
    });
    const askedAt = Date.now();
    while (!(await queued())) {
      expect(Date.now() - askedAt, 'the lookup never reached the resolver\'s socket').toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    cl.startAgent(lab.hosts[1]!);
    const deadline = Date.now() + 30_000;
    let log = '';
    while (Date.now() < deadline && !/"event":"agent.started"/.test(log)) {
      await new Promise((r) => setTimeout(r, 300));
      log = readFileSync(`${lab.root}/host-b/agent.log`, 'utf8').slice(logBefore);
    }
    expect(log).toMatch(/"event":"agent.started".*"adoptedTasks":1/);
    expect(log).toMatch(/"event":"dns.sockets_adopted".*"sockets":1,"lost":0/);
    const answered = await lookup;
    expect(answered.stdout.trim(), answered.stderr).toBe(vip);
    await new Promise((r) => setTimeout(r, 4000)); // a few passes
    log = readFileSync(`${lab.root}/host-b/agent.log`, 'utf8').slice(logBefore);
    expect(pidOf(t)).toBe(pid);
    expect(log).not.toMatch(/"event":"task.claimed"/);
    for (const line of log.split('\n').filter((l) => l.includes('"reconcile.pass"'))) {
      const pass = JSON.parse(line) as Record<string, number>;
      expect({ ns: pass['namespaces'], ov: pass['overlayOps'], gw: pass['gwLegs'], proc: pass['processes'], mesh: pass['meshRules'], lb: pass['lbChanges'] }).toEqual({ ns: 0, ov: 0, gw: 0, proc: 0, mesh: 0, lb: 0 });
    }
  });

  it('when a node dies its replicas move and the others drop its peers', async () => {
    const dead = lab.hosts[2]!;
    const moved = tasks.find((t) => t.node === dead.name)!;
    await cl.stopAgent(dead.name, 'SIGKILL');
    await cl.waitFor('api to run 3 replicas on the 2 live hosts', 90_000, async (c) => {
      const now = await c.listTasks({ service: 'api' });
      return now.length === 3 && now.every((t) => t.node !== dead.name && t.state === 'running');
    });
    const deadline = Date.now() + 30_000;
    let fdb = '';
    for (;;) {
      fdb = (await execIn(lab.hosts[0]!.dir.path('ov-appnet'), ['bridge', 'fdb', 'show', 'dev', 'vxlan0'])).stdout;
      if (!fdb.includes(dead.underlayIp) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(fdb).not.toContain(dead.underlayIp);
    const survivors = await cl.withCluster((c) => c.listTasks({ service: 'api' }));
    const replacement = survivors.find((t) => t.slot === moved.slot)!;
    expect(replacement.node).not.toBe(dead.name);
    const from = survivors.find((t) => t.slot !== moved.slot)!;
    const out = await inTask(from, ['curl', '-s', '-m', '3', `http://${replacement.addresses['appnet']!.ip}/`]);
    expect(out.stdout).toContain(`api.${moved.slot} on ${replacement.node}`);
  });
});
