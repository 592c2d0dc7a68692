/**
 * What an idle agent costs, thread by thread (main, DNS workers, libuv pool, ...), at SERVICES x 3 replicas
 * (published ports, socat tasks) on 3 lab hosts: CPU over a window that spans two resyncs (--resync-seconds
 * 30), RSS, and the processes the agent started in that window (meshnet_processes_spawned_total). The issue's
 * targets: <= 1 % of a core at 100 services, no process per pass, <= 70 MB RSS.
 * RESTARTED=1 measures host-a's agent after a graceful restart instead: every task is then adopted (the
 * new agent is not their parent), the state every node is in after an upgrade. AGENT_ARGS adds agent flags.
 * Run: npm run build && node dist/bench/agent/thread-cpu.js   (SERVICES=100 IDLE_SECONDS=65 by default)
 */
import { readFileSync, readdirSync } from 'node:fs';
import { ClusterLab } from '../../src/lab/cluster-lab.js';
import { execIn } from '../../src/sandbox/exec.js';

const SERVICES = Number(process.env.SERVICES ?? 100);
const SECONDS = Number(process.env.IDLE_SECONDS ?? 65);
const RESTARTED = process.env.RESTARTED === '1';
/** More agent flags, e.g. AGENT_ARGS='--vtep-probe-interval-ms 0' to see what the probes cost. */
const AGENT_ARGS = (process.env.AGENT_ARGS ?? '').split(' ').filter(Boolean);

function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid} ${comm}`, Number(f[11]) + Number(f[12]));
    } catch {
      // The thread ended while we looked.
    }
  }
  return out;
}

/** RSS and its parts (anonymous, file-backed such as node's own text), in MB, from /proc/PID/status. */
function rssMb(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 1024), anon: Math.round(kb('RssAnon') / 1024), file: Math.round(kb('RssFile') / 1024) };
}

/** One sample of the agent's own counters, read from its /metrics inside the host's namespace. */
async function counters(netns: string): Promise<{ spawned: number; passes: number }> {
  const text = (await execIn(netns, ['curl', '-s', '-m', '5', 'http://127.0.0.1:9323/metrics'])).stdout;
  const value = (name: string): number => text.split('\n').filter((l) => l.startsWith(name)).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  return { spawned: value('meshnet_processes_spawned_total'), passes: value('meshnet_reconcile_pass_duration_seconds_count') };
}

async function main(): Promise<void> {
  await ClusterLab.within(3, 'bench-threads', ['--drain-seconds', '1', ...AGENT_ARGS], async (cl, lab) => {
    await cl.startAll();
    await cl.withCluster(async (c) => {
      for (let i = 1; i <= SERVICES; i++) await c.createService({ name: `s${i}`, replicas: 3, ports: [{ published: 9000 + i, target: 80 }], command: ['socat', 'TCP-LISTEN:80,fork,reuseaddr', 'SYSTEM:echo ok'] });
    });
    await cl.waitFor('all running', 900_000, async (c) => (await c.listTasks()).filter((t) => t.state === 'running').length === SERVICES * 3);
    if (RESTARTED) {
      await cl.stopAgent('host-a', 'SIGTERM');
      cl.startAgent(lab.hosts[0]!);
      // Up again when it serves /metrics and has finished a pass since it started.
      await cl.waitFor('host-a back', 120_000, async () => (await counters(lab.hosts[0]!.netns).catch(() => ({ passes: 0 }))).passes > 0);
    }
    // Let the first passes after the last change settle before the window opens.
    await new Promise((r) => setTimeout(r, 5000));
    const pid = cl.agents.get('host-a')!.process.pid!;
    const netns = lab.hosts[0]!.netns;
    const before = threads(pid);
    const c0 = await counters(netns);
    // RSS moves with V8's collections and the resync's malloc_trim: sampled every 5 s over the window.
    const rssSamples: { rss: number; anon: number; file: number }[] = [];
    const windowEnd = Date.now() + SECONDS * 1000;
    while (Date.now() < windowEnd) {
      await new Promise((r) => setTimeout(r, Math.min(5000, Math.max(0, windowEnd - Date.now()))));
      rssSamples.push(rssMb(pid));
    }
    const after = threads(pid);
    const c1 = await counters(netns);
    const rows = [...after].map(([t, ticks]) => [t, (ticks - (before.get(t) ?? 0)) / SECONDS] as const).sort((a, b) => b[1] - a[1]);
    for (const [t, pct] of rows.slice(0, 12)) console.log(`${pct.toFixed(2).padStart(6)} % ${t}`);
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rss = { rss: median(rssSamples.map((x) => x.rss)), anon: median(rssSamples.map((x) => x.anon)), file: median(rssSamples.map((x) => x.file)) };
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('MALLOC_ARENA_MAX=')) ?? 'MALLOC_ARENA_MAX unset';
    console.log(`RSS over the window (MB, every 5 s): ${rssSamples.map((x) => x.rss).join(' ')}; agent env ${env}`);
    const total = rows.reduce((s, [, p]) => s + p, 0);
    console.log(JSON.stringify({
      bench: 'agent-idle',
      services: SERVICES,
      tasks_per_host: SERVICES,
      window_seconds: SECONDS,
      restarted: RESTARTED,
      agent_args: AGENT_ARGS.join(' '),
      cpu_percent_of_core: Math.round(total * 100) / 100,
      rss_mb: rss.rss,
      rss_mb_max: Math.max(...rssSamples.map((x) => x.rss)),
      rss_anon_mb: rss.anon,
      rss_file_mb: rss.file,
      passes: c1.passes - c0.passes,
      processes_spawned: c1.spawned - c0.spawned,
    }));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
