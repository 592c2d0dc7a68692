import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import { execIn } from '../../src/sandbox/exec.js';
import { overlayNetnsName } from '../../src/overlay/overlay-state.js';
import type { Explanation } from '../../src/explain/explanation.js';
import { RemoteKernelViewSource } from '../../src/explain/remote-source.js';
import { readNodeStatuses } from '../../src/agent/node-status.js';

// `meshnet explain` against 3 lab hosts with real agents: a healthy path first, then hops broken on
// purpose (a deleted FDB entry, a draining backend at weight 0, tasks that listen on the wrong port),
// each of which explain must find in the live kernel and name with a fix.

let lab: Lab;
let cl: ClusterLab;
let client: string;
const CLIENT_IP = '192.0.2.100';

/** Runs `meshnet explain ... --json`; returns the exit code and the explanations. */
function explain(args: string[]): { code: number; explanations: Explanation[]; stderr: string } {
  const r = cl.cli(['explain', ...args, '--json'], 60_000);
  const explanations = r.stdout.trim() ? (JSON.parse(r.stdout) as { explanations: Explanation[] }).explanations : [];
  return { code: r.code, explanations, stderr: r.stderr };
}

/** Polls explain until `ok` holds for its answer (agents program hosts within a pass or two). */
async function explainUntil(args: string[], what: string, ok: (e: Explanation, code: number) => boolean, timeoutMs = 60_000): Promise<Explanation> {
  const deadline = Date.now() + timeoutMs;
  let last: ReturnType<typeof explain> | undefined;
  for (;;) {
    last = explain(args);
    const e = last.explanations[0];
    if (e && ok(e, last.code)) return e;
    if (Date.now() > deadline) throw new Error(`explain ${args.join(' ')}: ${what} not seen in ${timeoutMs} ms; last answer (exit ${last.code}): ${last.stderr}\n${JSON.stringify(e, null, 1)?.slice(0, 4000)}\n${cl.logTails(5)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const allProblems = (e: Explanation) => e.problems.map((p) => `${p.severity}: ${p.message} | fix: ${p.fix}`);

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'explain' });
  client = await lab.addClient('client', CLIENT_IP);
  // A long drain keeps a scaled-down task at weight 0 for the whole test; a long resync keeps the
  // agents from repairing the FDB entry this test deletes before explain looks.
  cl = new ClusterLab(lab, ['--drain-seconds', '600', '--resync-seconds', '600']);
  await cl.startAll();
  const web = cl.cli(['service', 'create', '--name', 'web', '--replicas', '3', '-p', '8000:80', '--', process.execPath, ECHO_HTTP, '--port', '80']);
  expect(web.code, web.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

describe('meshnet explain on a lab cluster', () => {
  it('follows a published port hop by hop with counters, and exits 0 when every backend is reached', async () => {
    await explainUntil(['host-a:8000'], 'a delivered path over 3 backends', (e, code) => code === 0 && e.verdict === 'delivered' && e.backends.length === 3);
    const curl = await execIn(client, ['curl', '-s', '-m', '3', 'http://192.0.2.1:8000/'], { allowFailure: true });
    expect(curl.stdout).toMatch(/^web\.\d on host-/);
    const e = explain(['host-a:8000']).explanations[0]!;
    expect(e.verdict).toBe('delivered');
    expect(e.problems).toEqual([]);
    const dnat = e.hops.find((h) => h.kind === 'host-dnat')!;
    const rule = dnat.details.find((d) => d.startsWith('nat DOCKER-INGRESS:'))!;
    expect(rule).toMatch(/--dport 8000 -j DNAT --to-destination 172\.18\.0\.2:8000/);
    // The client's request went through this rule: its counter is not zero.
    expect(Number(/\[(\d+) pkts/.exec(rule)![1])).toBeGreaterThan(0);
    expect(e.hops.find((h) => h.kind === 'gwbridge')!.title).toContain('172.18.0.2');
    const lb = e.hops.find((h) => h.kind === 'sbox-lb')!;
    expect(lb.details[0]).toMatch(/mark 0x2040 \(8256\) -> entry ingress-tcp-8000: scheduler rr/);
    expect(e.backends.map((b) => b.share).reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    for (const b of e.backends) {
      const kinds = b.hops.map((h) => h.kind);
      expect(kinds).toEqual(b.node === 'host-a' ? ['overlay', 'task'] : ['overlay', 'return-path', 'task']);
      const task = b.hops.at(-1)!;
      expect(task.title).toContain('REDIRECT 8000 -> 80');
      expect(task.details.join('\n')).toMatch(/a process listens on tcp 80/);
    }
    const remote = e.backends.find((b) => b.node !== 'host-a')!;
    expect(remote.hops[0]!.details.join('\n')).toMatch(/^fdb [0-9a-f:]+ dst 192\.0\.2\.[23] permanent$/m);

    const text = cl.cli(['explain', 'host-a:8000']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^host-a:8000\/tcp \(service web\): DELIVERED/);
  });

  it('finds a deleted FDB entry on the sending host, names the backend it cuts off, and the fix', async () => {
    const e0 = explain(['host-a:8000']).explanations[0]!;
    const victim = e0.backends.find((b) => b.node !== 'host-a')!;
    const task = await cl.withCluster(async (c) => (await c.listTasks({ service: 'web' })).find((t) => `${t.service}.${t.slot}` === victim.task)!);
    const mac = task.addresses['ingress']!.mac;
    const vtep = lab.hosts.find((h) => h.name === victim.node)!.underlayIp;
    const ov = lab.hosts[0]!.dir.path(overlayNetnsName('ingress'));
    await execIn(ov, ['bridge', 'fdb', 'del', mac, 'dev', 'vxlan0', 'dst', vtep, 'self']);
    try {
      const r = explain(['host-a:8000']);
      expect(r.code).toBe(1);
      const e = r.explanations[0]!;
      expect(e.verdict).toBe('partial');
      const branch = e.backends.find((b) => b.task === victim.task)!;
      expect(branch.delivered).toBe(false);
      const stop = branch.hops.find((h) => h.kind === 'overlay')!.problems.find((p) => p.severity === 'stop')!;
      expect(stop.message).toContain(`no FDB entry for ${mac}`);
      expect(stop.fix).toContain(`bridge fdb replace ${mac} dev vxlan0 dst ${vtep} self permanent`);
      expect(e.deliveredShare).toBeCloseTo(1 - branch.share, 2);
      // Explain from another host still reaches that task.
      expect(explain([`${victim.node === 'host-b' ? 'host-c' : 'host-b'}:8000`]).explanations[0]!.verdict).toBe('delivered');
    } finally {
      await execIn(ov, ['bridge', 'fdb', 'replace', mac, 'dev', 'vxlan0', 'dst', vtep, 'self', 'permanent']);
    }
    expect(explain(['host-a:8000']).explanations[0]!.verdict).toBe('delivered');
  });

  it('shows a draining backend at weight 0 and that it gets no new connections', async () => {
    const scaled = cl.cli(['service', 'scale', 'web=2', '--detach']);
    expect(scaled.code, scaled.stderr).toBe(0);
    const e = await explainUntil(['host-b:8000'], 'a backend at weight 0', (x) => x.backends.some((b) => b.weight === 0));
    const draining = e.backends.find((b) => b.weight === 0)!;
    expect(draining.share).toBe(0);
    const warn = e.hops.find((h) => h.kind === 'sbox-lb')!.problems.find((p) => p.message.includes(`backend ${draining.address}`))!;
    expect(warn.severity).toBe('warn');
    expect(warn.message).toMatch(/has weight 0: it gets no new connections/);
    // The two others still take every new connection.
    expect(e.verdict).toBe('delivered');
    expect(e.backends.filter((b) => b.weight > 0).map((b) => b.share).reduce((a, b) => a + b, 0)).toBeCloseTo(1);
  });

  it('finds tasks that listen on the wrong port, and exits 1 with the fix', async () => {
    const deaf = cl.cli(['service', 'create', '--name', 'deaf', '--replicas', '2', '--detach', '-p', '8100:80', '--', process.execPath, ECHO_HTTP, '--port', '81']);
    expect(deaf.code, deaf.stderr).toBe(0);
    const e = await explainUntil(['host-c:8100'], 'both tasks not listening on 80', (x) => x.idleTasks.filter((t) => /nothing listens on tcp 80 in its namespace \(it listens on tcp 81\)/.test(t.reason)).length === 2);
    expect(e.verdict).toBe('stops');
    expect(explain(['host-c:8100']).code).toBe(1);
    const lb = e.hops.find((h) => h.kind === 'sbox-lb')!;
    expect(lb.status).toBe('stop');
    expect(allProblems(e).join('\n')).toMatch(/deaf\.\d on host-[abc] is not a backend: state starting; nothing listens on tcp 80 .*\| fix: make the service's command listen on 80, or set the service's target port to 81/);
  });

  it('follows a VIP from a client task through its own balancer to each backend', async () => {
    expect(cl.cli(['network', 'create', 'appnet']).code).toBe(0);
    for (const [name, replicas, port] of [['api', '2', '80'], ['cli', '1', '90']] as const) {
      const r = cl.cli(['service', 'create', '--name', name, '--replicas', replicas, '--network', 'appnet', '--', process.execPath, ECHO_HTTP, '--port', port]);
      expect(r.code, r.stderr).toBe(0);
    }
    const vip = await cl.withCluster(async (c) => (await c.getService('api'))!.vips['appnet']!);
    const e = await explainUntil([`${vip}:80`, '--from', 'cli.1'], 'a delivered VIP path', (x, code) => code === 0 && x.verdict === 'delivered' && x.backends.length === 2);
    expect(e.target).toBe(`${vip}:80/tcp from cli.1`);
    const lb = e.hops.find((h) => h.kind === 'task-lb')!;
    expect(lb.details.join('\n')).toMatch(/entry \S+: scheduler rr/);
    for (const b of e.backends) {
      expect(b.share).toBeCloseTo(0.5);
      expect(b.hops.at(-1)!.details.join('\n')).toMatch(/a process listens on tcp 80/);
    }
    // Without --from, a VIP is refused with what to add.
    const bare = cl.cli(['explain', `${vip}:80`]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/--from TASK/);
  });

  it("reads a node's kernel through its agent API just as from its namespaces (explain from another machine)", async () => {
    const statuses = await cl.withCluster((_c, store) => readNodeStatuses(store));
    const apis = new Map(statuses.flatMap((st) => (st.api ? [[st.node, st.api] as const] : [])));
    expect(apis.get('host-b')).toMatch(/^unix:\//);
    const request = { host: true, sbox: true, overlays: ['ingress'] };
    const remote = await new RemoteKernelViewSource(apis, undefined).read('host-b', request);
    expect(remote.node).toBe('host-b');
    const nat = JSON.stringify(remote).match(/--dport 8000/g) ?? [];
    expect(nat.length).toBeGreaterThan(0);
    await expect(new RemoteKernelViewSource(new Map(), undefined).read('host-b', request)).rejects.toThrow(/advertises no API/);
  });

  it('refuses targets it cannot read with exit 2', () => {
    expect(cl.cli(['explain', 'host-z:8000']).code).toBe(2);
    expect(cl.cli(['explain', 'nosuchservice']).code).toBe(2);
    expect(cl.cli(['explain', 'host-a:99999']).code).toBe(2);
  });
});
