// Time from ensureRunning() to the echo server answering HTTP inside the task's namespace,
// for 20 tasks started one after another, then 20 started at once. Prints figures; asserts nothing.
// Run after `npm run build`: node dist/bench/tasks/start-latency.js [count]
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { execIn } from '../../src/sandbox/exec.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { demoAppCommand } from '../../src/tasks/demo-apps.js';
import { TaskSupervisor } from '../../src/tasks/supervisor.js';

const count = Number(process.argv[2] ?? 20);
if (!Number.isInteger(count) || count < 1 || count > 100) throw new Error('count must be 1-100');
const root = `/run/meshnet-bench-${randomBytes(4).toString('hex')}`;
const netns = new NetnsDir(`${root}/netns`);
const sup = new TaskSupervisor({ stateDir: `${root}/tasks` });

// Polls from inside the namespace every 5 ms (one curl each) until the server answers, at most 10 s.
const WAIT_SCRIPT = 'n=0; until curl -s -o /dev/null --max-time 1 http://127.0.0.1:80/; do n=$((n+1)); [ $n -gt 2000 ] && exit 1; sleep 0.005; done';

async function startAndWait(i: number, prefix: string): Promise<{ ensureMs: number; answerMs: number }> {
  const name = `${prefix}${i}`;
  const path = netns.create(name);
  // The agent wires each namespace before starting its task; here loopback is all the server needs.
  await execIn(path, ['ip', 'link', 'set', 'lo', 'up']);
  const t0 = performance.now();
  await sup.ensureRunning({
    taskId: name,
    netnsPath: path,
    command: demoAppCommand('echo-http', 80),
    env: { MESHNET_NODE: 'bench' },
    resolvConf: 'nameserver 127.0.0.11\n',
  });
  const ensureMs = performance.now() - t0;
  await execIn(path, ['sh', '-c', WAIT_SCRIPT], { timeoutMs: 15_000 });
  return { ensureMs, answerMs: performance.now() - t0 };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function report(label: string, samples: number[]): void {
  const s = [...samples].sort((a, b) => a - b);
  console.log(`${label}: n=${s.length} p50=${percentile(s, 50).toFixed(1)} ms p99=${percentile(s, 99).toFixed(1)} ms max=${s.at(-1)!.toFixed(1)} ms`);
}

async function main(): Promise<void> {
  try {
    const sequential: { ensureMs: number; answerMs: number }[] = [];
    for (let i = 0; i < count; i++) sequential.push(await startAndWait(i, 'seq'));
    report('sequential ensureRunning() returns', sequential.map((r) => r.ensureMs));
    report('sequential ensureRunning() -> HTTP answer', sequential.map((r) => r.answerMs));
    await sup.reap([], { graceMs: 2_000 });

    const t0 = performance.now();
    const burst = await Promise.all(Array.from({ length: count }, (_, i) => startAndWait(i, 'par')));
    const total = performance.now() - t0;
    report(`${count} at once: ensureRunning() -> HTTP answer`, burst.map((r) => r.answerMs));
    console.log(`${count} at once: all answering after ${total.toFixed(0)} ms`);
    const t1 = performance.now();
    await sup.reap([], { graceMs: 2_000 });
    console.log(`${count} stopped (SIGTERM, drain) in ${(performance.now() - t1).toFixed(0)} ms`);
  } finally {
    await sup.reap([], { graceMs: 500 }).catch(() => undefined);
    sup.close();
    netns.removeAll();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
