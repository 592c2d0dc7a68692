import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Lab } from '../lab/lab.js';
import { CLI_PATH, ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { eventually } from '../../src/lab/eventually.js';
import { execIn } from '../../src/sandbox/exec.js';
import { networkKey } from '../../src/model/keys.js';
import type { TaskRecord } from '../../src/model/records.js';

// Issue 14's stretch, a v6-only underlay: two hosts whose underlay link has no IPv4 address at all advertise
// 2001:db8::N. The overlay's VXLAN runs over IPv6 between them (a capture on the underlay bridge sees only IPv6
// UDP 4789), a published port answers from the tasks on both hosts, a VIP balances across hosts, and the
// VXLAN-from-peers filter is in ip6tables, the v4 one absent.

let lab: Lab;
let cl: ClusterLab;
let client: string;
let tasks: TaskRecord[];

const pidOf = (t: TaskRecord) => Number(readFileSync(`${lab.root}/${t.node}/state/tasks/${t.id}/pid`, 'utf8'));
const inTask = (t: TaskRecord, argv: string[]) => execIn(null, ['nsenter', `--target=${pidOf(t)}`, '--net', '--mount', '--', ...argv], { allowFailure: true, timeoutMs: 60_000 });
const inOverlay = (host: number, argv: string[]) => execIn(null, ['nsenter', `--net=${lab.hosts[host]!.dir.path('ov-six')}`, '--', ...argv], { allowFailure: true });

/** The first word (task name) of each line of `n` requests' answers from `netns` to `url`. */
async function answeredBy(netns: string | null, url: string, n: number, run = (argv: string[]) => execIn(netns, argv, { allowFailure: true, timeoutMs: 60_000 })): Promise<string[]> {
  const out = await run(['sh', '-c', `for i in $(seq ${n}); do curl -s -g -m 3 '${url}'; echo; done`]);
  return out.stdout.split('\n').map((l) => l.trim().split(' ')[0] ?? '').filter(Boolean);
}

/** Starts tcpdump on the underlay bridge for `count` VXLAN datagrams; resolves once it listens, with its output to come. */
async function captureVxlan(count: number): Promise<Promise<string>> {
  const p = lab.spawn(lab.underlay, ['timeout', '40', 'tcpdump', '-i', 'ul0', '-n', '-l', '-c', String(count), 'udp port 4789']);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<string>((resolve) => p.once('exit', () => resolve(out)));
  await new Promise<void>((resolve, reject) => {
    p.stderr!.on('data', (d: Buffer) => d.toString().includes('listening on') && resolve());
    p.once('exit', (code) => reject(new Error(`tcpdump exited (${code}) before it listened`)));
  });
  return done;
}

beforeAll(async () => {
  lab = await Lab.create(2, { tag: 'ul6', underlay: 'ipv6' });
  client = await lab.addClient('client', null, '2001:db8::100');
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1']);
  await cl.startAll();
  // Dual stack: the published port then answers on the hosts' v6 addresses, the only ones they have.
  const created = cl.cli(['network', 'create', 'six', '--ipv6', '--subnet', '10.0.66.0/24', '--subnet', 'fd00:66::/64']);
  expect(created.code, created.stderr).toBe(0);
  const r = cl.cli(['service', 'create', '--name', 'web', '--replicas', '2', '--network', 'six', '-p', '8080:80', '--', process.execPath, ECHO_HTTP, '--port', '80', '--host', '::']);
  expect(r.code, r.stderr).toBe(0);
  await cl.waitFor('web to run 2 replicas', 60_000, async (c) => (await c.listTasks({ service: 'web' })).filter((t) => t.state === 'running').length === 2);
  tasks = await cl.withCluster((c) => c.listTasks({ service: 'web' }));
}, 120_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

describe('a v6-only underlay', () => {
  it('registers each node with its v6 underlay address and places a task on each', async () => {
    const nodes = await cl.withCluster((c) => c.listNodes());
    expect(nodes.map((n) => n.underlayIp).sort()).toEqual(['2001:db8::1', '2001:db8::2']);
    expect(new Set(tasks.map((t) => t.node))).toEqual(new Set(['host-a', 'host-b']));
  });

  it('builds vxlan0 with a v6 local, 70 bytes under the underlay MTU, and FDB entries to the peer\'s v6 address', async () => {
    const link = await inOverlay(0, ['ip', '-d', 'link', 'show', 'vxlan0']);
    expect(link.stdout).toContain('local 2001:db8::1');
    expect(link.stdout).toMatch(/mtu 1430 /);
    const fdb = await eventually('the FDB entry to host-b', () => inOverlay(0, ['bridge', 'fdb', 'show', 'dev', 'vxlan0']), (r) => r.stdout.includes('dst 2001:db8::2'));
    expect(fdb.stdout).toMatch(/dst 2001:db8::2 .*self permanent/);
  });

  it('answers a published port from the tasks on both hosts, and the capture on the underlay sees VXLAN over IPv6 only', async () => {
    // The filter takes v4 and v6 VXLAN alike: a v4 datagram, had any been sent, would be among the lines. -c ends it.
    const capture = await captureVxlan(6);
    for (const h of lab.hosts) {
      const got = await eventually(`the published port on ${h.name}`, () => answeredBy(client, `http://[${h.underlayIp}]:8080/`, 8), (a) => a.length === 8 && new Set(a).size === 2, 45_000);
      expect(new Set(got), h.name).toEqual(new Set(['web.1', 'web.2']));
    }
    // tcpdump prints each datagram as its outer line (addresses, VXLAN header) and then the frame inside.
    const outer = (await capture).split('\n').filter((l) => l.includes('VXLAN'));
    expect(outer).toHaveLength(6);
    for (const l of outer) expect(l).toMatch(/ IP6 2001:db8::[12]\.\d+ > 2001:db8::[12]\.4789: VXLAN, flags \[I\] \(0x08\), vni \d+$/);
  });

  it('balances a VIP across hosts from a task', async () => {
    const from = tasks.find((t) => t.node === 'host-a')!;
    const got = await eventually('the VIP to answer from both tasks', () => answeredBy(null, 'http://web/', 12, (argv) => inTask(from, argv)), (a) => a.length === 12 && new Set(a).size === 2, 45_000);
    expect(got).toHaveLength(12);
    expect(new Set(got)).toEqual(new Set(['web.1', 'web.2']));
  });

  it('admits VXLAN from the peer only, in ip6tables, and writes no v4 VXLAN filter', async () => {
    const v6 = await execIn(lab.hosts[0]!.netns, ['ip6tables', '-S', 'MESHNET-VXLAN']);
    expect(v6.stdout.trim().split('\n')).toEqual(['-N MESHNET-VXLAN', '-A MESHNET-VXLAN -s 2001:db8::2/128 -j RETURN', '-A MESHNET-VXLAN -j DROP']);
    const input6 = await execIn(lab.hosts[0]!.netns, ['ip6tables', '-S', 'INPUT']);
    expect(input6.stdout).toMatch(/--dport 4789 .*meshnet-vxlan6.* -j MESHNET-VXLAN/);
    const v4 = await execIn(lab.hosts[0]!.netns, ['iptables', '-S'], { allowFailure: true });
    expect(v4.stdout).not.toContain('MESHNET-VXLAN');
  });

  it('refuses, with a usage exit, an agent that would join with a v4 underlay', async () => {
    const r = await execIn(client, ['ip', 'addr', 'add', '192.0.2.100/24', 'dev', 'eth0']);
    expect(r.code).toBe(0);
    const dir = `${lab.root}/intruder`;
    const agent = await execIn(client, [process.execPath, CLI_PATH, '--store', cl.store, 'agent', '--name', 'intruder', '--advertise-addr', '192.0.2.100', '--netns-dir', `${dir}/netns`, '--state-dir', `${dir}/state`], { allowFailure: true, timeoutMs: 60_000 });
    expect(agent.code, agent.stdout).toBe(2);
    expect(agent.stderr + agent.stdout).toMatch(/--advertise-addr 192\.0\.2\.100 is IPv4 but node host-[ab] advertises 2001:db8::[12] \(IPv6\)/);
    expect((await cl.withCluster((c) => c.listNodes())).map((n) => n.id).sort()).toEqual(['host-a', 'host-b']);
  });

  it('refuses an encrypted network at create, and in the agent for one stored anyway, building no VXLAN for it', async () => {
    const refused = cl.cli(['network', 'create', '--encrypted', 'sec']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/encrypted overlays need an IPv4 underlay, and node host-[ab] advertises 2001:db8::[12]/);
    // A record stored before the nodes moved to v6 (or by an older CLI): the agents still refuse it.
    expect(cl.cli(['network', 'create', 'sec']).code).toBe(0);
    await cl.withCluster(async (_c, store) => {
      const kv = (await store.get(networkKey('sec')))!;
      await store.put(networkKey('sec'), JSON.stringify({ ...JSON.parse(kv.value), options: { encrypted: '' } }));
    });
    const r = cl.cli(['service', 'create', '--name', 'secret', '--network', 'sec', '--', process.execPath, ECHO_HTTP, '--port', '80']);
    expect(r.code, r.stderr).toBe(0);
    const logs = () => Promise.resolve(lab.hosts.map((h) => readFileSync(`${lab.root}/${h.name}/agent.log`, 'utf8')).join('\n'));
    const log = await eventually('the refusal in an agent log', logs, (l) => l.includes('meshnet encrypts VXLAN over IPv4 only'), 45_000);
    expect(log).toMatch(/network sec is encrypted, but this node's underlay is IPv6 \(2001:db8::[12]\)/);
    for (const h of [0, 1]) {
      const vx = await execIn(null, ['nsenter', `--net=${lab.hosts[h]!.dir.path('ov-sec')}`, '--', 'ip', 'link', 'show', 'vxlan0'], { allowFailure: true });
      expect(vx.code, `vxlan0 of sec on ${lab.hosts[h]!.name}`).not.toBe(0);
    }
  });
});
