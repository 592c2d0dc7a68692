import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type LabHost } from '../lab/lab.js';
import { CLI_PATH, ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';

// The agent's /metrics, /healthz and /readyz, scraped inside its lab host's namespace (where it binds by
// default, on 127.0.0.1:9323), its systemd readiness through a stand-in NOTIFY_SOCKET, and --log-level debug.

interface RunningAgent {
  host: LabHost;
  child: ChildProcess;
  log: string[];
}

let lab: Lab;
let cl: ClusterLab;
let notifyDir: string;
let listener: ChildProcess;
const agents = new Map<string, RunningAgent>();

function startAgent(host: LabHost, extra: string[], env: Record<string, string> = {}): RunningAgent {
  const argv = [process.execPath, CLI_PATH, '--store', cl.store, 'agent', '--name', host.name, '--advertise-addr', host.underlayIp, '--netns-dir', host.dir.dir, '--state-dir', `${lab.root}/${host.name}/state`, '--lease-ttl', '3', ...extra];
  const child = lab.spawn(host.netns, argv, env);
  const a = { host, child, log: [] as string[] };
  child.stderr!.on('data', (d: Buffer) => a.log.push(String(d)));
  child.stdout!.on('data', (d: Buffer) => a.log.push(String(d)));
  agents.set(host.name, a);
  return a;
}

/** The agent's JSON log lines. */
function logLines(a: RunningAgent): Record<string, unknown>[] {
  return a.log
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** GETs a path of the agent's endpoint from inside its host. */
async function get(host: LabHost, path: string): Promise<{ status: number; body: string }> {
  const r = await lab.exec(host.netns, ['curl', '-s', '-m', '5', '-w', '\n%{http_code}', `http://127.0.0.1:9323${path}`], { allowFailure: true, timeoutMs: 10_000 });
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${[...agents.values()].map((a) => `--- ${a.host.name}\n${a.log.join('').split('\n').slice(-8).join('\n')}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The value of one Prometheus series, or undefined when absent. */
function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  lab = await Lab.create(2, { tag: 'agent-endpoints' });
  cl = new ClusterLab(lab);
  // systemd's side of Type=notify: a unix datagram socket that prints what it receives.
  notifyDir = mkdtempSync(join(tmpdir(), 'meshnet-notify-'));
  listener = spawn('socat', ['-u', `UNIX-RECV:${notifyDir}/notify`, `OPEN:${notifyDir}/received,creat,append`], { stdio: 'ignore' });
  await waitFor('the notify socket', 10_000, async () => (existsSync(`${notifyDir}/notify`) ? true : undefined));
  startAgent(lab.hosts[0]!, [], { NOTIFY_SOCKET: `${notifyDir}/notify` });
  startAgent(lab.hosts[1]!, ['--log-level', 'debug']);
  await cl.waitFor('2 nodes', 60_000, async (c) => (await c.listNodes()).length === 2);
}, 120_000);

afterAll(async () => {
  for (const a of agents.values()) a.child.kill('SIGKILL');
  listener?.kill('SIGKILL');
  await lab?.destroy();
  if (notifyDir) rmSync(notifyDir, { recursive: true, force: true });
});

describe('agent health endpoints', () => {
  it('/readyz answers 200 once the first pass finished with the store up; /healthz 200 while passes run', async () => {
    for (const h of lab.hosts) {
      const ready = await waitFor(`${h.name} /readyz 200`, 60_000, async () => {
        const r = await get(h, '/readyz');
        return r.status === 200 ? r : undefined;
      });
      expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });
      const live = await get(h, '/healthz');
      expect(live.status).toBe(200);
      expect(JSON.parse(live.body)).toMatchObject({ status: 'ok', lastPassSecondsAgo: expect.any(Number) });
      expect((await get(h, '/nothing')).status).toBe(404);
    }
  });

  it('tells systemd READY=1 after the first pass, as the agent\'s pid; without NOTIFY_SOCKET it sends nothing and runs the same', async () => {
    const a = agents.get('host-a')!;
    const received = await waitFor('READY=1 on the notify socket', 30_000, async () => {
      const text = existsSync(`${notifyDir}/received`) ? readFileSync(`${notifyDir}/received`, 'utf8') : '';
      return text.includes('READY=1') ? text : undefined;
    });
    expect(received).toContain(`MAINPID=${a.child.pid}`);
    // The log line follows once systemd-notify has exited.
    await waitFor('systemd.ready_notified in the log', 10_000, async () => (logLines(a).some((l) => l['event'] === 'systemd.ready_notified' && l['component'] === 'systemd') ? true : undefined));
    const b = agents.get('host-b')!;
    expect(logLines(b).filter((l) => String(l['event']).startsWith('systemd.'))).toEqual([]);
    expect((await get(b.host, '/readyz')).status).toBe(200);
  });
});

describe('agent /metrics', () => {
  it('shows passes, kernel changes, backends of a published service, task states, the store and DNS answers', async () => {
    expect(cl.cli(['network', 'create', 'appnet', '--subnet', '10.0.9.0/24']).code).toBe(0);
    const r = cl.cli(['service', 'create', '--name', 'web', '--replicas', '2', '--network', 'appnet', '-p', '8400:80', '--', process.execPath, ECHO_HTTP, '--port', '80']);
    expect(r.code, r.stderr).toBe(0);
    const host = lab.hosts[0]!;
    const text = await waitFor('2 active backends of web in host-a\'s metrics', 60_000, async () => {
      const m = await get(host, '/metrics');
      return metric(m.body, 'meshnet_lb_backends{service="web",frontend="ingress:8400/tcp",state="active"}') === 2 ? m.body : undefined;
    });
    expect(metric(text, 'meshnet_lb_backends{service="web",frontend="ingress:8400/tcp",state="draining"}')).toBe(0);
    const vip = (await cl.withCluster((c) => c.getService('web')))!.vips['appnet']!;
    expect(metric(text, `meshnet_lb_backends{service="web",frontend="${vip}/tcp",state="active"}`)).toBe(2);
    expect(text).toMatch(new RegExp(`^meshnet_lb_backend_weight\\{service="web",frontend="${vip.replace(/\./g, '\\.')}/tcp",backend="10\\.0\\.9\\.\\d+"\\} 1$`, 'm'));
    expect(metric(text, 'meshnet_reconcile_pass_duration_seconds_count{resync="true"}')).toBeGreaterThan(0);
    expect(metric(text, 'meshnet_kernel_changes_total{surface="lb"}')).toBeGreaterThan(0);
    expect(metric(text, 'meshnet_store_connected')).toBe(1);
    expect(metric(text, 'meshnet_store_revision')).toBeGreaterThan(0);
    expect(metric(text, 'meshnet_build_info{version="0.1.0"}')).toBe(1);
    expect(metric(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const running = await waitFor('host-a\'s task running', 60_000, async () => {
      const m = await get(host, '/metrics');
      return metric(m.body, 'meshnet_tasks{state="running"}') === 1 ? m.body : undefined;
    });
    expect(metric(running, 'meshnet_task_restarts_total')).toBe(0);

    // Two names answered by the resolver inside host-a's task, then the counters show them.
    const [task] = await cl.withCluster((c) => c.listTasks({ service: 'web' })).then((ts) => ts.filter((t) => t.node === 'host-a'));
    const pid = readFileSync(`${lab.root}/host-a/state/tasks/${task!.id}/pid`, 'utf8').trim();
    const before = metric((await get(host, '/metrics')).body, 'meshnet_dns_answers_total{rcode="NOERROR"}') ?? 0;
    for (const name of ['web', 'tasks.web']) {
      const dig = spawnSync('nsenter', [`--target=${pid}`, '--net', '--', 'dig', '+short', '+tries=1', '+time=2', '@127.0.0.11', name], { encoding: 'utf8', timeout: 10_000 });
      expect(dig.stdout.trim()).not.toBe('');
    }
    const after = (await get(host, '/metrics')).body;
    expect(metric(after, 'meshnet_dns_answers_total{rcode="NOERROR"}')).toBe(before + 2);
    expect(metric(after, 'meshnet_dns_queries_total')).toBeGreaterThanOrEqual(before + 2);
  });
});

describe('agent --log-level', () => {
  it('debug explains each changed target in one line; info writes none of those lines', () => {
    const debug = logLines(agents.get('host-b')!).filter((l) => l['event'] === 'reconcile.target_changed');
    expect(debug.length).toBeGreaterThan(0);
    for (const l of debug) expect(l).toMatchObject({ level: 'debug', component: 'agent', surface: expect.any(String), target: expect.any(String), reason: expect.stringMatching(/^(new|changed|retry|resync)$/) });
    expect(debug.some((l) => l['surface'] === 'lb')).toBe(true);
    expect(logLines(agents.get('host-a')!).filter((l) => l['level'] === 'debug')).toEqual([]);
  });

  it('refuses a bad --metrics-addr with exit 2 and the forms it takes', () => {
    const r = spawnSync(process.execPath, [CLI_PATH, '--store', cl.store, 'agent', '--name', 'x', '--advertise-addr', '192.0.2.9', '--metrics-addr', 'localhost:9323'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid --metrics-addr "localhost:9323": localhost is not an IP address\. Use IP:PORT .* or off/);
  });
});
