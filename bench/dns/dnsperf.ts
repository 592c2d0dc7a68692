/**
 * dnsperf against our resolver and against dnsmasq serving the same internal names from a
 * hosts file, each inside its own namespace on 127.0.0.11:53, in one run. Prints absolute qps,
 * average latency and the ratio, then one JSON line of the figures.
 * Usage: node dist/bench/dns/dnsperf.js [seconds] [outstanding]   (DNS_WORKERS=2 by default, as the agent runs)
 * Needs the Debian packages dnsperf, dnsmasq-base and dnsutils.
 */
import { spawnIn, execIn } from '../../src/sandbox/exec.js';
import { DnsService } from '../../src/dns/dns-service.js';
import { buildNameView } from '../../src/dns/name-view.js';
import { BenchLab } from './bench-lab.js';

const seconds = Number(process.argv[2] ?? 10);
const outstanding = Number(process.argv[3] ?? 100);
const SERVICES = 50;
const WORKERS = Number(process.env.DNS_WORKERS ?? 2);

interface PerfResult {
  qps: number;
  avgLatencyMs: number;
  completedPct: number;
}

async function dnsperf(netns: string, queryFile: string, maxOutstanding = outstanding): Promise<PerfResult> {
  const r = await execIn(netns, ['dnsperf', '-s', '127.0.0.11', '-d', queryFile, '-l', String(seconds), '-q', String(maxOutstanding), '-t', '2'], {
    timeoutMs: (seconds + 30) * 1000,
  });
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const lat = Number(/Average Latency \(s\):\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const completed = Number(/Queries completed:\s+\d+ \(([\d.]+)%\)/.exec(r.stdout)?.[1]);
  if (!Number.isFinite(qps) || !Number.isFinite(lat)) throw new Error(`cannot read dnsperf output:\n${r.stdout}\n${r.stderr}`);
  return { qps, avgLatencyMs: lat * 1000, completedPct: completed };
}

async function main(): Promise<void> {
  const lab = new BenchLab();
  const dns = new DnsService({ upstreams: [], workers: WORKERS, port: 53 });
  let dnsmasq: ReturnType<typeof spawnIn> | null = null;
  try {
    const ours = await lab.namespace('ours');
    const theirs = await lab.namespace('dnsmasq');
    const services = Array.from({ length: SERVICES }, (_, i) => ({
      name: `web${i}`,
      endpointMode: 'vip' as const,
      attachments: [{ network: 'front', vip: `10.0.${i}.2` }],
    }));
    const tasks = services.flatMap((s, i) =>
      [3, 4, 5].map((h) => ({ name: `${s.name}.${h}`, service: s.name, running: true, ips: [{ network: 'front', ip: `10.0.${i}.${h}` }] })),
    );
    await dns.attach(ours, buildNameView({ taskNetworks: ['front'], services, tasks }));

    const hosts: string[] = [];
    const queries: string[] = [];
    for (let i = 0; i < SERVICES; i++) {
      hosts.push(`10.0.${i}.2 web${i}`);
      for (const h of [3, 4, 5]) hosts.push(`10.0.${i}.${h} tasks.web${i}`);
      queries.push(`web${i} A`, `tasks.web${i} A`);
    }
    const hostsFile = lab.file('hosts', `${hosts.join('\n')}\n`);
    const queryFile = lab.file('queries', `${queries.join('\n')}\n`);
    dnsmasq = spawnIn(theirs, [
      'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`,
      '--listen-address=127.0.0.11', '--bind-interfaces', '--port=53', '--local-ttl=5', '--cache-size=10000',
      '--pid-file=', '--user=root',
    ], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const check = await execIn(theirs, ['dig', '+short', '@127.0.0.11', 'tasks.web1'], { timeoutMs: 5000 });
    const checkOurs = await execIn(ours, ['dig', '+short', '@127.0.0.11', 'tasks.web1'], { timeoutMs: 5000 });
    if (check.stdout.trim().split('\n').sort().join() !== checkOurs.stdout.trim().split('\n').sort().join()) {
      throw new Error(`the two servers disagree: dnsmasq ${check.stdout} ours ${checkOurs.stdout}`);
    }

    // Alternate twice so neither server always runs on a warmer machine.
    const results: { ours: PerfResult[]; dnsmasq: PerfResult[] } = { ours: [], dnsmasq: [] };
    for (let round = 0; round < 2; round++) {
      results.ours.push(await dnsperf(ours, queryFile));
      results.dnsmasq.push(await dnsperf(theirs, queryFile));
    }
    // Latency at a light load (10 queries in flight): with 100 outstanding, average latency is
    // mostly queueing (Little's law: 100 / qps), whoever the server is.
    const light = { ours: await dnsperf(ours, queryFile, 10), dnsmasq: await dnsperf(theirs, queryFile, 10) };
    const best = (rs: PerfResult[]): PerfResult => rs.reduce((a, b) => (b.qps > a.qps ? b : a));
    const o = best(results.ours);
    const d = best(results.dnsmasq);
    const line = (name: string, r: PerfResult): string =>
      `${name.padEnd(8)} ${r.qps.toFixed(0).padStart(8)} qps  avg latency ${r.avgLatencyMs.toFixed(3)} ms  completed ${r.completedPct}%`;
    console.log(`dnsperf ${seconds}s x2 rounds, ${outstanding} outstanding, ${queries.length} internal names, best round of each:`);
    console.log(line('meshnet', o));
    console.log(line('dnsmasq', d));
    console.log(`light load, 10 outstanding: meshnet ${light.ours.qps.toFixed(0)} qps avg ${light.ours.avgLatencyMs.toFixed(3)} ms; dnsmasq ${light.dnsmasq.qps.toFixed(0)} qps avg ${light.dnsmasq.avgLatencyMs.toFixed(3)} ms`);
    console.log(`ratio meshnet/dnsmasq: ${(o.qps / d.qps).toFixed(2)} (target >= 0.75); all rounds: ${JSON.stringify(results)}`);
    console.log(
      JSON.stringify({
        bench: 'dns.dnsperf',
        workers: WORKERS,
        outstanding,
        meshnetQps: Math.round(o.qps),
        dnsmasqQps: Math.round(d.qps),
        ratio: Number((o.qps / d.qps).toFixed(3)),
        meshnetLightAvgMs: light.ours.avgLatencyMs,
        dnsmasqLightAvgMs: light.dnsmasq.avgLatencyMs,
      }),
    );
  } finally {
    if (dnsmasq?.pid) process.kill(dnsmasq.pid, 'SIGTERM');
    await dns.close();
    await lab.cleanup();
  }
}

await main();
