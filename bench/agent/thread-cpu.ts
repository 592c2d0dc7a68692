/**
 * Where an idle agent's CPU goes, thread by thread (main, DNS workers, libuv pool, ...), at SERVICES x 3
 * replicas on 3 lab hosts. Run: npm run build && node dist/bench/agent/thread-cpu.js
 */
import { readFileSync, readdirSync } from 'node:fs';
import { ClusterLab } from '../../src/lab/cluster-lab.js';

const SERVICES = Number(process.env.SERVICES ?? 30);
const SECONDS = Number(process.env.IDLE_SECONDS ?? 10);

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

async function main(): Promise<void> {
  await ClusterLab.within(3, 'bench-threads', ['--drain-seconds', '1'], async (cl, lab) => {
    await cl.startAll();
    await cl.withCluster(async (c) => {
      for (let i = 1; i <= SERVICES; i++) await c.createService({ name: `s${i}`, replicas: 3, ports: [{ published: 9000 + i, target: 80 }], command: ['socat', 'TCP-LISTEN:80,fork,reuseaddr', 'SYSTEM:echo ok'] });
  });
  await cl.waitFor('all running', 600_000, async (c) => (await c.listTasks()).filter((t) => t.state === 'running').length === SERVICES * 3);
  await new Promise((r) => setTimeout(r, 5000));
  const pid = cl.agents.get('host-a')!.process.pid!;
  const before = threads(pid);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const after = threads(pid);
  const rows = [...after].map(([t, ticks]) => [t, ((ticks - (before.get(t) ?? 0)) / SECONDS)] as const).sort((a, b) => b[1] - a[1]);
  for (const [t, pct] of rows.slice(0, 12)) console.log(`${pct.toFixed(2).padStart(6)} % ${t}`);
  console.log(JSON.stringify({ bench: 'agent-thread-cpu', services: SERVICES, total_percent: rows.reduce((s, [, p]) => s + p, 0) }));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
