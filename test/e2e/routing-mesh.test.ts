import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP, ECHO_UDP } from '../../src/lab/cluster-lab.js';
import { execIn } from '../../src/sandbox/exec.js';

// The routing mesh as users meet it: real agents in 3 lab hosts, services created with the CLI,
// traffic from a client on the underlay and from each host's own localhost.

let lab: Lab;
let cl: ClusterLab;
let client: string;
const CLIENT_IP = '192.0.2.100';

/** Runs `n` curls from `netns` to `url`; returns the answer lines ("FAILED" for a failed request). */
async function curlMany(netns: string, url: string, n: number): Promise<string[]> {
  const script = `for i in $(seq ${n}); do curl -s -m 3 "$1" || echo FAILED; echo; done`;
  const out = await execIn(netns, ['sh', '-c', script, 'curl', url], { allowFailure: true, timeoutMs: 120_000 });
  return out.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

const taskOf = (line: string) => /^(\S+) on (\S+)/.exec(line)?.[1] ?? 'FAILED';

async function runningTasks(service: string): Promise<number> {
  return cl.withCluster(async (c) => (await c.listTasks({ service })).filter((t) => t.state === 'running' && t.desiredState === 'running').length);
}

/** Waits until every host answers `port` (rules reach every host within a pass or two). */
async function waitForPublished(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let ok = 0;
    for (const h of lab.hosts) {
      const r = await execIn(client, ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${h.underlayIp}:${port}/`], { allowFailure: true });
      if (r.stdout === '200') ok++;
    }
    if (ok === lab.hosts.length) return;
    if (Date.now() > deadline) throw new Error(`port ${port} answered on ${ok}/${lab.hosts.length} hosts after 60 s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'mesh-e2e' });
  client = await lab.addClient('client', CLIENT_IP);
  cl = new ClusterLab(lab, ['--drain-seconds', '2']);
  await cl.startAll();
  const created = cl.cli(['service', 'create', '--name', 'web', '--replicas', '3', '-p', '8000:80', '--', process.execPath, ECHO_HTTP, '--port', '80']);
  expect(created.code, created.stderr).toBe(0);
  await waitForPublished(8000);
}, 240_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

describe('routing mesh', () => {
  it('spreads 90 requests over the three hosts to every replica, none failing', async () => {
    const answers: string[] = [];
    for (const h of lab.hosts) answers.push(...(await curlMany(client, `http://${h.underlayIp}:8000/`, 30)));
    expect(answers).toHaveLength(90);
    expect(answers.filter((a) => taskOf(a) === 'FAILED')).toEqual([]);
    expect(new Set(answers.map(taskOf))).toEqual(new Set(['web.1', 'web.2', 'web.3']));
  });

  it('answers curl localhost:8000 inside each host', async () => {
    for (const h of lab.hosts) {
      const answers = await curlMany(h.netns, 'http://localhost:8000/', 6);
      expect(answers.map(taskOf).filter((t) => t === 'FAILED')).toEqual([]);
      expect(answers.every((a) => /^web\.\d on host-[abc]/.test(a))).toBe(true);
    }
  });

  it('shows the operator the DNAT chain Docker would have', async () => {
    const out = await execIn(lab.hosts[1]!.netns, ['iptables', '-t', 'nat', '-S', 'DOCKER-INGRESS']);
    expect(out.stdout).toMatch(/-A DOCKER-INGRESS -p tcp .*--dport 8000 .*-j DNAT --to-destination 172\.18\.0\.2:8000/);
    expect(out.stdout.trim().split('\n').at(-1)).toBe('-A DOCKER-INGRESS -j RETURN');
  });

  it('service inspect shows the VIP, and each node\'s backend set and LB backend kind', async () => {
    const deadline = Date.now() + 20_000;
    let nodes: { node: string; lbBackend: string; frontends: Record<string, string[]> }[] = [];
    for (;;) {
      const r = cl.cli(['service', 'inspect', 'web']);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { vips: Record<string, string>; nodes: typeof nodes };
      expect(doc.vips['ingress']).toMatch(/^10\.255\./);
      nodes = doc.nodes;
      const complete = nodes.length === 3 && nodes.every((n) => (Object.values(n.frontends)[0] ?? []).length === 3);
      if (complete || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    expect(nodes.map((n) => n.node)).toEqual(['host-a', 'host-b', 'host-c']);
    for (const n of nodes) {
      expect(n.lbBackend).toBe('nftables');
      expect(Object.keys(n.frontends)).toEqual(['published 8000/tcp (fwmark 8256)']);
      expect(Object.values(n.frontends)[0]).toHaveLength(3);
    }
  });

  it('carries UDP through a published port', async () => {
    const r = cl.cli(['service', 'create', '--name', 'udpecho', '--replicas', '2', '-p', '5353:5353/udp', '--', process.execPath, ECHO_UDP, '--port', '5353']);
    expect(r.code, r.stderr).toBe(0);
    const deadline = Date.now() + 60_000;
    let answered = new Set<string>();
    while (Date.now() < deadline && answered.size < 3) {
      answered = new Set();
      for (const h of lab.hosts) {
        const out = await execIn(client, ['sh', '-c', `echo ping | socat -T2 - UDP:${h.underlayIp}:5353`], { allowFailure: true });
        if (/^udpecho\.\d on host-/.test(out.stdout.trim())) answered.add(h.name);
      }
    }
    expect([...answered].sort()).toEqual(['host-a', 'host-b', 'host-c']);
  });

  it('scales 3 -> 6 -> 1 under a request loop without failing requests', async () => {
    const loop = execIn(
      client,
      ['sh', '-c', `end=$(($(date +%s)+40)); while [ $(date +%s) -lt $end ] && [ ! -f "$1" ]; do for h in 192.0.2.1 192.0.2.2 192.0.2.3; do curl -s -m 3 http://$h:8000/ || echo FAILED; echo; done; done`, 'loop', `${lab.root}/stop-loop`],
      { allowFailure: true, timeoutMs: 90_000 },
    );
    expect(cl.cli(['service', 'scale', 'web=6']).code).toBe(0);
    expect(await runningTasks('web')).toBe(6);
    expect(cl.cli(['service', 'scale', 'web=1']).code).toBe(0);
    expect(await runningTasks('web')).toBe(1);
    await new Promise((r) => setTimeout(r, 3000));
    await execIn(null, ['touch', `${lab.root}/stop-loop`]);
    const lines = (await loop).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    const failed = lines.filter((l) => taskOf(l) === 'FAILED');
    expect(lines.length).toBeGreaterThan(30);
    // Removed tasks drain (weight 0, then stop): only a request already in flight may fail.
    expect(failed.length).toBeLessThanOrEqual(5);
    expect(new Set(lines.map(taskOf)).size).toBeGreaterThanOrEqual(4);
    expect(cl.cli(['service', 'scale', 'web=3']).code).toBe(0);
    await waitForPublished(8000);
  });

  it('restarts a killed task process and keeps serving', async () => {
    const task = await cl.withCluster(async (c) => (await c.listTasks({ service: 'web' }))[0]!);
    const stateDir = `${lab.root}/${task.node}/state/tasks/${task.id}`;
    const pid = Number(readFileSync(`${stateDir}/pid`, 'utf8'));
    process.kill(pid, 'SIGKILL');
    await cl.waitFor('the killed task to be restarted', 30_000, async (c) => {
      const t = (await c.listTasks({ service: 'web' })).find((x) => x.id === task.id);
      return !!t && t.restarts > task.restarts && t.state === 'running';
    });
    expect(Number(readFileSync(`${stateDir}/pid`, 'utf8'))).not.toBe(pid);
    const answers = await curlMany(client, `http://${lab.hosts[0]!.underlayIp}:8000/`, 9);
    expect(answers.filter((a) => taskOf(a) === 'FAILED')).toEqual([]);
  });

  it('policy=local keeps the client address and serves only local tasks', async () => {
    const r = cl.cli(['service', 'create', '--name', 'loc', '--replicas', '3', '--health-port', '8101', '-p', 'policy=local,8100:80', '--', process.execPath, ECHO_HTTP, '--port', '80']);
    expect(r.code, r.stderr).toBe(0);
    await waitForPublished(8100);
    const tasks = await cl.withCluster((c) => c.listTasks({ service: 'loc' }));
    for (const h of lab.hosts) {
      const answers = await curlMany(client, `http://${h.underlayIp}:8100/`, 4);
      const local = tasks.find((t) => t.node === h.name)!;
      expect(answers.every((a) => a.startsWith(`loc.${local.slot} on ${h.name} (client ${CLIENT_IP})`))).toBe(true);
    }
    const health = await execIn(client, ['curl', '-s', '-w', ' %{http_code}', `http://${lab.hosts[0]!.underlayIp}:8101/`], { allowFailure: true });
    expect(health.stdout).toMatch(/"localTasks":1[\s\S]* 200$/);
  });

  it('mode=host binds the port only on the host that runs the task', async () => {
    const r = cl.cli(['service', 'create', '--name', 'hst', '--replicas', '1', '-p', 'mode=host,8200:80', '--', process.execPath, ECHO_HTTP, '--port', '80']);
    expect(r.code, r.stderr).toBe(0);
    const node = await cl.withCluster(async (c) => (await c.listTasks({ service: 'hst' }))[0]!.node);
    const deadline = Date.now() + 30_000;
    let codes: Record<string, string> = {};
    for (;;) {
      codes = {};
      for (const h of lab.hosts) {
        codes[h.name] = (await execIn(client, ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${h.underlayIp}:8200/`], { allowFailure: true })).stdout;
      }
      if (codes[node] === '200' || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    for (const h of lab.hosts) expect(codes[h.name], h.name).toBe(h.name === node ? '200' : '000');
  });

  it('service update publishes and unpublishes a port of a running service on every host', async () => {
    const add = cl.cli(['service', 'update', 'web', '--publish-add', '8001:80']);
    expect(add.code, add.stderr).toBe(0);
    await waitForPublished(8001);
    const rm = cl.cli(['service', 'update', 'web', '--publish-rm', '8001']);
    expect(rm.code, rm.stderr).toBe(0);
    const deadline = Date.now() + 30_000;
    for (;;) {
      let left = 0;
      for (const h of lab.hosts) {
        const nat = await execIn(h.netns, ['iptables-save', '-t', 'nat'], { allowFailure: true });
        if (/--dport 8001\b/.test(nat.stdout)) left++;
      }
      if (left === 0) break;
      if (Date.now() > deadline) throw new Error(`${left} hosts still publish 8001`);
      await new Promise((res) => setTimeout(res, 300));
    }
    const refused = await execIn(client, ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${lab.hosts[0]!.underlayIp}:8001/`], { allowFailure: true });
    expect(refused.stdout).toBe('000');
    expect((await curlMany(client, `http://${lab.hosts[0]!.underlayIp}:8000/`, 3)).filter((a) => taskOf(a) === 'FAILED')).toEqual([]);
    const bad = cl.cli(['service', 'update', 'web', '--publish-rm', '9999']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/does not publish 9999\/tcp/);
  });

  it('publishes a port on every host even where a local program listens on it, and says so (Docker\'s rule)', async () => {
    const hostB = lab.hosts[1]!;
    // A local user binding a published port first must not take the service's outside traffic.
    const squatter = lab.spawn(hostB.netns, ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', 'socat', 'TCP-LISTEN:8600,fork,reuseaddr', 'SYSTEM:echo local-program']);
    await new Promise((res) => setTimeout(res, 500)); // socat listens at once; it answers without HTTP
    const r = cl.cli(['service', 'create', '--name', 'clash', '--replicas', '1', '-p', '8600:80', '--', process.execPath, ECHO_HTTP, '--port', '80']);
    expect(r.code, r.stderr).toBe(0);
    const deadline = Date.now() + 30_000;
    let codes: string[] = [];
    for (;;) {
      codes = [];
      for (const h of lab.hosts) {
        codes.push((await execIn(client, ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${h.underlayIp}:8600/`], { allowFailure: true })).stdout);
      }
      if (codes.every((c) => c === '200') || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    expect(codes, cl.logTails(6)).toEqual(['200', '200', '200']);
    const natB = await execIn(hostB.netns, ['iptables-save', '-t', 'nat']);
    expect(natB.stdout).toMatch(/--dport 8600\b/);
    expect(readFileSync(`${lab.root}/host-b/agent.log`, 'utf8')).toMatch(/"event":"mesh.port_shadowed".*8600\/tcp/);
    squatter.kill('SIGKILL');
    expect(cl.cli(['service', 'rm', 'clash']).code).toBe(0);
  });

  it('removing a service removes its rules on every host', async () => {
    expect(cl.cli(['service', 'rm', 'udpecho', 'loc', 'hst']).code).toBe(0);
    const deadline = Date.now() + 30_000;
    for (;;) {
      let left = 0;
      for (const h of lab.hosts) {
        const nat = await execIn(h.netns, ['iptables-save', '-t', 'nat'], { allowFailure: true });
        if (/dport (5353|8100|8200)\b/.test(nat.stdout)) left++;
      }
      if (left === 0) break;
      if (Date.now() > deadline) throw new Error(`${left} hosts still hold rules of removed services`);
      await new Promise((res) => setTimeout(res, 300));
    }
    const still = await curlMany(client, `http://${lab.hosts[2]!.underlayIp}:8000/`, 3);
    expect(still.filter((a) => taskOf(a) === 'FAILED')).toEqual([]);
  });
});
