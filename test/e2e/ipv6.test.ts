import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { eventually } from '../../src/lab/eventually.js';
import { execIn } from '../../src/sandbox/exec.js';
import type { ServiceRecord, TaskRecord } from '../../src/model/records.js';
import type { Explanation } from '../../src/explain/explanation.js';

// Issue 14, IPv6 dual stack as a user meets it: two hosts, a --ipv6 network, a two-replica service. Tasks reach
// each other over v6 across hosts, resolve AAAA on 127.0.0.11 and reach the v6 VIP by name; a v4-only network
// next to it gets no v6 at all. meshnet explain follows the v6 VIP. The service publishes a port: the ingress network
// turns dual stack with it, and an outside client reaches the port on each host's v6 underlay address; explain follows
// it there. The same service publishes a mode=host port, which answers on each host's v6 address from its own task.

let lab: Lab;
let cl: ClusterLab;
let tasks: TaskRecord[];
let svc: ServiceRecord;
let client: string;

const pidOf = (t: TaskRecord) => Number(readFileSync(`${lab.root}/${t.node}/state/tasks/${t.id}/pid`, 'utf8'));
const inTask = (t: TaskRecord, argv: string[]) => execIn(null, ['nsenter', `--target=${pidOf(t)}`, '--net', '--mount', '--', ...argv], { allowFailure: true, timeoutMs: 30_000 });

beforeAll(async () => {
  lab = await Lab.create(2, { tag: 'ipv6-e2e' });
  await lab.addUnderlay6();
  client = await lab.addClient('client', '192.0.2.100', '2001:db8::100');
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1']);
  await cl.startAll();
  for (const args of [['six', '--ipv6', '--subnet', '10.0.66.0/24', '--subnet', 'fd00:66::/64'], ['plain', '--subnet', '10.0.67.0/24']]) {
    const created = cl.cli(['network', 'create', ...args]);
    expect(created.code, created.stderr).toBe(0);
  }
  const r = cl.cli(['service', 'create', '--name', 'web', '--replicas', '2', '--network', 'six', '-p', '8080:80', '-p', 'mode=host,published=8090,target=80', '--', process.execPath, ECHO_HTTP, '--port', '80', '--host', '::']);
  expect(r.code, r.stderr).toBe(0);
  const loc = cl.cli(['service', 'create', '--name', 'loc', '--replicas', '2', '--network', 'six', '-p', 'policy=local,8081:80', '--health-port', '8082', '--', process.execPath, ECHO_HTTP, '--port', '80', '--host', '::']);
  expect(loc.code, loc.stderr).toBe(0);
  await cl.waitFor('web to run 2 replicas', 60_000, async (c) => (await c.listTasks({ service: 'web' })).filter((t) => t.state === 'running').length === 2);
  await cl.waitFor('loc to run 2 replicas', 60_000, async (c) => (await c.listTasks({ service: 'loc' })).filter((t) => t.state === 'running').length === 2);
  tasks = await cl.withCluster((c) => c.listTasks({ service: 'web' }));
  svc = (await cl.withCluster((c) => c.getService('web')))!;
}, 120_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

describe('a dual-stack network', () => {
  it('gives the service a v6 VIP and each task a v6 address in the given /64', () => {
    expect(svc.vips6?.['six']).toMatch(/^fd00:66::[0-9a-f]+$/);
    for (const t of tasks) expect(t.addresses['six']?.ip6).toMatch(/^fd00:66::[0-9a-f]+$/);
    expect(new Set(tasks.map((t) => t.node))).toEqual(new Set(['host-a', 'host-b']));
  });

  it('carries v6 between hosts over the overlay', async () => {
    const [a, b] = tasks as [TaskRecord, TaskRecord];
    const out = await eventually('v6 across hosts', () => inTask(a, ['curl', '-s', '-6', '-m', '3', `http://[${b.addresses['six']!.ip6}]/`]), (r) => r.stdout.includes(`web.${b.slot}`));
    expect(out.stdout).toContain(`web.${b.slot} on ${b.node} (client ${a.addresses['six']!.ip6}`);
  });

  it('answers AAAA for the service (VIP) and tasks.<service> (task addresses), and v6 PTR', async () => {
    const t = tasks[0]!;
    expect((await inTask(t, ['dig', '+short', '@127.0.0.11', 'AAAA', 'web'])).stdout.trim()).toBe(svc.vips6!['six']);
    const all = (await inTask(t, ['dig', '+short', '@127.0.0.11', 'AAAA', 'tasks.web'])).stdout.trim().split('\n').sort();
    expect(all).toEqual(tasks.map((x) => x.addresses['six']!.ip6!).sort());
    expect((await inTask(t, ['dig', '+short', '@127.0.0.11', '-x', svc.vips6!['six']!])).stdout.trim()).toBe('web.six.');
    expect((await inTask(t, ['dig', '+short', '@127.0.0.11', 'A', 'web'])).stdout.trim()).toBe(svc.vips['six']);
  });

  it('balances the v6 VIP over both replicas, reached by name over v6', async () => {
    const from = tasks[0]!;
    const out = await inTask(from, ['sh', '-c', 'for i in $(seq 12); do curl -s -6 -m 3 http://web/; echo; done']);
    const lines = out.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    expect(lines).toHaveLength(12);
    expect(new Set(lines.map((l) => l.split(' ')[0]))).toEqual(new Set(['web.1', 'web.2']));
    const table = await execIn(null, ['nsenter', `--target=${pidOf(from)}`, '--net', '--', 'nft', 'list', 'table', 'ip6', 'meshnet6']);
    expect(table.stdout).toContain(`ip6 daddr ${svc.vips6!['six']}`);
  });

  it('meshnet explain follows the v6 VIP from a task through its ip6 table to both v6 backends', async () => {
    const vip6 = svc.vips6!['six']!;
    const r = cl.cli(['explain', `[${vip6}]:80`, '--from', `web.${tasks[0]!.slot}`, '--json'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const [e] = (JSON.parse(r.stdout) as { explanations: Explanation[] }).explanations;
    expect(e!.verdict).toBe('delivered');
    expect(e!.hops[0]!.details[0]).toMatch(/ip6 meshnet6 DNAT to fd00:66::/);
    expect(e!.backends.map((b) => b.address).sort()).toEqual(tasks.map((t) => t.addresses['six']!.ip6!).sort());
  });

  it('leaves v4-only networks without v6 addresses or tables', async () => {
    const plain = await cl.withCluster((c) => c.getNetwork('plain'));
    expect(plain?.subnet6).toBeUndefined();
    const host = lab.hosts[0]!;
    const ov = await execIn(null, ['nsenter', `--net=${host.dir.path('ov-six')}`, '--', 'ip', '-6', 'addr', 'show', 'dev', 'br0'], { allowFailure: true });
    expect(ov.stdout).toContain('fd00:66::1/64');
  });
});

describe('published ports over v6', () => {
  /** Which task answered each of `n` requests from the outside client to `url` (curl's extra flags first). */
  const answers = async (flags: string[], url: string, n = 8) => {
    const out = await execIn(client, ['sh', '-c', `for i in $(seq ${n}); do curl -s -g -m 3 ${flags.join(' ')} '${url}'; echo; done`], { allowFailure: true, timeoutMs: 60_000 });
    return out.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  };
  const names = async (flags: string[], url: string) => (await answers(flags, url)).map((l) => l.split(' ')[0]);

  it('answers on the v6 address of every host and balances over the tasks on both hosts', async () => {
    for (const h of lab.hosts) {
      const url = `http://[${h.underlayIp6}]:8080/`;
      const got = await eventually(`v6 published port on ${h.name}`, () => names(['-6'], url), (a) => a.length === 8 && new Set(a).size === 2, 45_000);
      expect(got, url).toHaveLength(8);
      expect(new Set(got), url).toEqual(new Set(['web.1', 'web.2']));
    }
  });

  it('keeps the v4 published port answering, and puts the v6 DNAT in ip6tables only', async () => {
    const h = lab.hosts[0]!;
    expect(new Set(await names([], `http://${h.underlayIp}:8080/`))).toEqual(new Set(['web.1', 'web.2']));
    const v6 = await execIn(h.netns, ['ip6tables', '-t', 'nat', '-S', 'DOCKER-INGRESS']);
    expect(v6.stdout).toMatch(/--dport 8080 -j DNAT --to-destination \[fd6d:6777:6272::[0-9a-f]+\]:8080/);
    const v4 = await execIn(h.netns, ['iptables', '-t', 'nat', '-S', 'DOCKER-INGRESS']);
    expect(v4.stdout).toMatch(/--dport 8080 -j DNAT --to-destination 172\.[0-9.]+:8080/);
  });

  it('policy=local over v6: each host answers with its own task only, which sees the real v6 client; the health port answers over v6', async () => {
    const locTasks = await cl.withCluster((c) => c.listTasks({ service: 'loc' }));
    for (const h of lab.hosts) {
      const local = locTasks.filter((t) => t.node === h.name && t.state === 'running').map((t) => `loc.${t.slot}`);
      const url = `http://[${h.underlayIp6}]:8081/`;
      const got = await eventually(`v6 policy=local on ${h.name}`, () => answers(['-6'], url, 4), (a) => a.length === (local.length ? 4 : 0), 45_000);
      expect(got.map((l) => l.split(' ')[0] ?? '').every((n) => local.includes(n)), `${url}: ${got.join(' | ')}`).toBe(true);
      expect(got.length, url).toBe(local.length ? 4 : 0);
      for (const line of got) expect(line).toContain('(client 2001:db8::100');
      // The health port answers on the v6 address too: 200 with a local task, 503 without.
      const health = await execIn(client, ['curl', '-s', '-g', '-6', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://[${h.underlayIp6}]:8082/`], { allowFailure: true });
      expect(health.stdout, `health port on ${h.name}`).toBe(local.length ? '200' : '503');
    }
  });

  it('mode=host over v6: each host\'s v6 address answers from its own task, which sees the client, through ip6tables MESHNET-HOSTPORT', async () => {
    for (const h of lab.hosts) {
      const own = `web.${tasks.find((t) => t.node === h.name)!.slot}`;
      const url = `http://[${h.underlayIp6}]:8090/`;
      const got = await eventually(`v6 mode=host on ${h.name}`, () => answers(['-6'], url, 4), (a) => a.length === 4, 45_000);
      expect(got.map((l) => l.split(' ')[0]), url).toEqual([own, own, own, own]);
      for (const line of got) expect(line).toContain('(client 2001:db8::100');
    }
    const rules = await execIn(lab.hosts[0]!.netns, ['ip6tables', '-t', 'nat', '-S', 'MESHNET-HOSTPORT']);
    expect(rules.stdout).toMatch(/--dport 8090 -j DNAT --to-destination \[fd6d:6777:6272::[0-9a-f]+\]:80/);
  });

  it('meshnet explain follows [host v6]:PORT through ip6tables and the sandbox\'s meshnet6 to both tasks, and a mode=host one to the local task', async () => {
    const h = lab.hosts[1]!;
    const r = cl.cli(['explain', `[${h.underlayIp6}]:8080`, '--json'], 60_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [e] = (JSON.parse(r.stdout) as { explanations: Explanation[] }).explanations;
    expect(e!.target).toBe(`[${h.underlayIp6}]:8080/tcp (${h.name})`);
    expect(e!.hops.map((x) => x.kind)).toEqual(['host-dnat', 'gwbridge', 'sbox-lb']);
    expect(e!.hops[0]!.details.join('\n')).toMatch(/DOCKER-INGRESS: .*--to-destination \[fd6d:6777:6272::[0-9a-f]+\]:8080 {3}\[\d+ pkts/);
    expect(e!.hops[2]!.details.join('\n')).toMatch(/ct status dnat snat to fd/);
    expect(e!.backends.map((b) => [b.task, b.delivered]).sort()).toEqual([['web.1', true], ['web.2', true]]);
    const host = cl.cli(['explain', `[${h.underlayIp6}]:8090`, '--node', h.name, '--json'], 60_000);
    expect(host.code, host.stdout + host.stderr).toBe(0);
    const [hp] = (JSON.parse(host.stdout) as { explanations: Explanation[] }).explanations;
    expect(hp!.backends.map((b) => b.task)).toEqual([`web.${tasks.find((t) => t.node === h.name)!.slot}`]);
  });
});
