/**
 * iperf3 between tasks on two lab hosts over an encrypted overlay network and over a plain one,
 * with real agents. Prints both and the ratio (target >= 0.5 x plain) and ends with one JSON line.
 * On a kernel without ESP (CONFIG_INET_ESP) the encrypted network carries nothing, by design: the
 * bench says so and reports null for it. Run: npm run build && node dist/bench/overlay/encrypted-throughput.js
 */
import { ClusterLab } from '../../src/lab/cluster-lab.js';
import { execIn } from '../../src/sandbox/exec.js';
import { taskNetnsName } from '../../src/agent/node-plan.js';
import type { TaskRecord } from '../../src/model/records.js';

const SECONDS = Number(process.env.SECONDS_PER_RUN ?? 5);
const RUNS = Number(process.env.RUNS ?? 2);

/** Median of a non-empty list. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  await ClusterLab.within(2, 'bench-esp', ['--lease-ttl', '5'], async (cl, lab) => {
    await cl.startAll();
    const result: Record<string, number | null> = {};
    for (const [net, flags] of [['plain', []], ['secure', ['--encrypted']]] as const) {
      const r = cl.cli(['network', 'create', ...flags, net]);
      if (r.code !== 0) throw new Error(r.stderr);
      // iperf3 -s in every replica (one per host); the one on host-a is the client's.
      await cl.withCluster((c) => c.createService({ name: `perf-${net}`, replicas: 2, networks: [net], command: ['/usr/bin/iperf3', '-s', '-p', '5201'] }));
      await cl.waitFor(`perf-${net} on both hosts`, 120_000, async (c) => {
        const ts = await c.listTasks({ service: `perf-${net}` });
        return ts.length === 2 && new Set(ts.map((t) => t.node)).size === 2 && ts.every((t) => t.state === 'running');
      });
      const tasks: TaskRecord[] = await cl.withCluster((c) => c.listTasks({ service: `perf-${net}` }));
      const from = tasks.find((t) => t.node === 'host-a')!;
      const to = tasks.find((t) => t.node === 'host-b')!;
      const ns = lab.hosts[0]!.dir.path(taskNetnsName(from.id));
      const gbits: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const out = await execIn(ns, ['iperf3', '-c', to.addresses[net]!.ip, '-p', '5201', '-t', String(SECONDS), '-J', '--connect-timeout', '3000'], { allowFailure: true, timeoutMs: (SECONDS + 15) * 1000 });
        try {
          const bps = (JSON.parse(out.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
          gbits.push(bps / 1e9);
        } catch {
          console.log(`${net}: run ${i + 1} carried no traffic (${out.stderr.trim() || out.stdout.slice(0, 200).trim() || `exit ${out.code}`})`);
        }
      }
      result[net] = gbits.length ? Math.round(median(gbits) * 100) / 100 : null;
      console.log(`${net.padEnd(7)} iperf3 one stream, task on host-a -> task on host-b: ${result[net] === null ? 'no traffic' : `${result[net]} Gbit/s (runs ${gbits.map((g) => g.toFixed(2)).join(', ')})`}`);
    }
    const ratio = result['plain'] && result['secure'] ? Math.round((result['secure'] / result['plain']) * 100) / 100 : null;
    if (result['secure'] === null) {
      const log = cl.logTails(400);
      if (/no ESP or no rfc4106/.test(log)) console.log('encrypted: this kernel has no ESP (CONFIG_INET_ESP) or no AES-GCM; the encrypted network fails closed and carries nothing');
    }
    console.log(`encrypted / plain = ${ratio ?? 'n/a'} (target >= 0.5)`);
    console.log(JSON.stringify({ bench: 'overlay/encrypted-throughput', plainGbits: result['plain'], encryptedGbits: result['secure'], ratio, seconds: SECONDS, runs: RUNS }));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
