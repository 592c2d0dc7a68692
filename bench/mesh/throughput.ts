/**
 * The published port's data path against a direct path and HAProxy, in one run:
 *
 *   client 192.0.2.100 --underlay-- host 192.0.2.1 [DOCKER-INGRESS DNAT, meshnet_gwbr 172.18.0.1]
 *     -- sbox 172.18.0.2 [VIP layer's nftables backend, or HAProxy] -- eth0 10.255.0.2/.3
 *     --veth (stands in for the overlay)-- task 10.255.0.9 [REDIRECT 8000->80, nginx, iperf3 -s]
 *
 * direct:  client -> 10.255.0.9:80 routed through host and sbox, no NAT
 * mesh:    client -> 192.0.2.1:8000: meshnet's own rules end to end (host DNAT -> sbox fwmark
 *          service from computeMeshPlan, applied by src/vip/nft: DNAT+SNAT -> task REDIRECT -> nginx:80)
 * haproxy: client -> 192.0.2.1:8001 (host DNAT -> sbox:8001 -> HAProxy TCP mode, nbthread 1 -> task:80)
 *
 * Run: npm run build && node dist/bench/mesh/throughput.js [seconds per run, default 5] [repetitions, default 1]
 * Needs: wrk, nginx-light, haproxy, iperf3 (Debian packages), root.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execIn } from '../../src/sandbox/exec.js';
import { applyHostRules, applySysctls, applyTaskRules } from '../../src/mesh/iptables-apply.js';
import { IptablesWriter } from '../../src/mesh/iptables-writer.js';
import { NftBackend } from '../../src/vip/nft/nft-backend.js';
import type { ServiceInput } from '../../src/mesh/mesh-input.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { MeshLab } from '../../test/mesh/mesh-lab.js';

const seconds = Math.min(Math.max(Number(process.argv[2] ?? 5), 1), 30);
// Repetitions, interleaved across paths so a neighbour's load spike hits all of them; medians are printed.
const reps = Math.min(Math.max(Number(process.argv[3] ?? 1), 1), 5);
const GW = 'meshnet_gwbr';
const BACKEND = '10.255.0.9';

interface HttpFigures {
  reqPerSec: number;
  p99Ms: number;
  errors: number;
  cpuBusyPct: number;
}

function cpuTimes(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

async function wrk(netns: string, url: string): Promise<HttpFigures> {
  const before = cpuTimes();
  const r = await execIn(netns, ['wrk', '-t1', '-c32', `-d${seconds}s`, '--timeout', '2s', '--latency', url], {
    timeoutMs: (seconds + 15) * 1000,
  });
  const after = cpuTimes();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(r.stdout)?.[1] ?? '');
  const errLine = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const errors = (errLine ? errLine.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  const cpuBusyPct = (100 * (after.busy - before.busy)) / Math.max(1, after.total - before.total);
  return { reqPerSec: rps, p99Ms: p99, errors, cpuBusyPct };
}

async function iperf(netns: string, address: string, port: number): Promise<number> {
  const r = await execIn(netns, ['iperf3', '-c', address, '-p', String(port), '-P', '4', '-t', String(Math.min(seconds, 5)), '-J'], {
    timeoutMs: (seconds + 20) * 1000,
  });
  const json = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return json.end.sum_received.bits_per_second / 1e9;
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  const lab = new MeshLab('mesh-bench');
  let lb: NftBackend | null = null;
  const scratch = mkdtempSync(join(tmpdir(), 'meshnet-bench-'));
  try {
    const client = await lab.netns('client');
    const host = await lab.netns('host');
    const sbox = await lab.netns('sbox');
    const backend = await lab.netns('backend');
    await lab.veth({ netns: client, name: 'eth0', cidr: '192.0.2.100/24' }, { netns: host, name: 'eth0', cidr: '192.0.2.1/24' });
    await lab.ip(host, `link add ${GW} type bridge`);
    await lab.ip(host, `addr add 172.18.0.1/16 dev ${GW}`);
    await lab.ip(host, `link set ${GW} up`);
    await lab.veth({ netns: host, name: 'veth-sbox' }, { netns: sbox, name: 'eth1', cidr: '172.18.0.2/16' });
    await lab.ip(host, `link set veth-sbox master ${GW}`);
    await lab.veth({ netns: sbox, name: 'eth0', cidr: '10.255.0.2/16' }, { netns: backend, name: 'eth0', cidr: `${BACKEND}/16` });
    // HAProxy gets its own source address: sharing the SNAT address would mix conntrack/TIME_WAIT state.
    await lab.ip(sbox, 'addr add 10.255.0.3/16 dev eth0');
    await lab.ip(client, 'route add default via 192.0.2.1');
    await lab.ip(host, 'route add 10.255.0.0/16 via 172.18.0.2');
    await lab.ip(sbox, 'route add default via 172.18.0.1');
    await lab.ip(backend, 'route add default via 10.255.0.2');

    // Host: meshnet's own rules, exactly as the agent applies them.
    const published = (id: string, port: number): ServiceInput => ({
      id,
      name: id,
      ports: [{ published: port, target: port, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }],
    });
    const web = published('web', 8000);
    web.ports[0]!.target = 80;
    const plan = computeMeshPlan({
      node: {
        nodeId: 'bench',
        gwbridge: { name: GW, subnet: '172.18.0.0/16' },
        sbox: { gwbridgeAddress: '172.18.0.2', ingressAddress: '10.255.0.2' },
        ingressSubnet: '10.255.0.0/16',
      },
      services: [web, published('iperf', 5201), published('web-haproxy', 8001), published('iperf-haproxy', 5202)],
      tasks: [
        { id: 'web.1', serviceId: 'web', nodeId: 'bench', state: 'running', ingressAddress: BACKEND },
        { id: 'iperf.1', serviceId: 'iperf', nodeId: 'bench', state: 'running', ingressAddress: BACKEND },
      ],
    });
    applySysctls(host, plan.host.sysctls);
    await applyHostRules(new IptablesWriter({ netns: host }), plan.host);
    // The task namespace here serves both services: merge their redirects.
    await applyTaskRules(new IptablesWriter({ netns: backend }), { redirects: plan.tasks.flatMap((t) => t.redirects) });
    applySysctls(sbox, plan.sbox.sysctls);
    // HAProxy's ports stay out of the kernel balancer: it answers them itself in the sandbox.
    const kernelServices = plan.sbox.virtualServices.filter((v) => v.backends.length > 0);
    lb = new NftBackend(sbox);
    await lb.apply({ services: kernelServices });

    // Backend: nginx with one worker answering "ok"; iperf3 server.
    const nginxConf = join(scratch, 'nginx.conf');
    writeFileSync(
      nginxConf,
      `worker_processes 1; daemon off; pid ${scratch}/nginx.pid; error_log stderr warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 80 reuseport; location / { return 200 "ok\\n"; } } }
`,
    );
    const haproxyConf = join(scratch, 'haproxy.cfg');
    writeFileSync(
      haproxyConf,
      `global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
listen web
  bind 172.18.0.2:8001
  server b ${BACKEND}:80 source 10.255.0.3
listen iperf
  bind 172.18.0.2:5202
  server b ${BACKEND}:5201 source 10.255.0.3
`,
    );
    const answers = (netns: string, address: string, port: number) => async (): Promise<boolean> =>
      (await execIn(netns, ['curl', '-s', '-o', '/dev/null', '--max-time', '1', `http://${address}:${port}/`], { allowFailure: true })).code === 0;
    await lab.start(backend, ['nginx', '-c', nginxConf, '-e', 'stderr'], answers(backend, '127.0.0.1', 80));
    const listening = (netns: string, port: number) => async (): Promise<boolean> =>
      (await execIn(netns, ['ss', '-Hltn', `sport = :${port}`])).stdout.trim() !== '';
    await lab.start(backend, ['iperf3', '-s'], listening(backend, 5201));
    await lab.start(sbox, ['haproxy', '-db', '-f', haproxyConf], answers(sbox, '172.18.0.2', 8001));

    const paths = [
      { name: 'direct', url: `http://${BACKEND}/`, iperf: [BACKEND, 5201] as const },
      { name: 'mesh (kernel, meshnet)', url: 'http://192.0.2.1:8000/', iperf: ['192.0.2.1', 5201] as const },
      { name: 'HAProxy tcp nbthread 1', url: 'http://192.0.2.1:8001/', iperf: ['192.0.2.1', 5202] as const },
    ];
    for (const p of paths) {
      const probe = await execIn(client, ['curl', '-sS', '--max-time', '2', p.url], { allowFailure: true });
      if (probe.stdout.trim() !== 'ok') throw new Error(`${p.name} path is broken: ${probe.stderr || probe.stdout}`);
    }

    const samples = new Map<string, { http: HttpFigures; gbps: number }[]>(paths.map((p) => [p.name, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const p of paths) {
        const t0 = Date.now();
        const http = await wrk(client, p.url);
        const gbps = await iperf(client, p.iperf[0], p.iperf[1]);
        samples.get(p.name)!.push({ http, gbps });
        console.error(JSON.stringify({ event: 'bench.mesh.sample', rep, path: p.name, ms: Date.now() - t0, http, gbps }));
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rows = paths.map((p) => {
      const list = samples.get(p.name)!;
      return {
        name: p.name,
        http: {
          reqPerSec: median(list.map((x) => x.http.reqPerSec)),
          p99Ms: median(list.map((x) => x.http.p99Ms)),
          errors: list.reduce((a, x) => a + x.http.errors, 0),
          cpuBusyPct: median(list.map((x) => x.http.cpuBusyPct)),
        },
        gbps: median(list.map((x) => x.gbps)),
      };
    });
    const [direct, mesh, haproxy] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    const pad = (s: string, n: number): string => s.padEnd(n);
    console.log(`\nload average before: ${loadBefore.map((x) => x.toFixed(1)).join(' ')} (other work on the machine skews every path)`);
    console.log(`median of ${reps}; wrk -t1 -c32 -d${seconds}s keep-alive, nginx 1 worker; iperf3 -P4; 2 cores shared by client, proxies and server\n`);
    console.log(`${pad('path', 26)}${pad('req/s', 10)}${pad('p99 ms', 9)}${pad('errors', 8)}${pad('cpu %', 8)}iperf3 -P4 Gbit/s`);
    for (const r of rows) {
      console.log(
        `${pad(r.name, 26)}${pad(r.http.reqPerSec.toFixed(0), 10)}${pad(r.http.p99Ms.toFixed(2), 9)}${pad(String(r.http.errors), 8)}${pad(r.http.cpuBusyPct.toFixed(0), 8)}${r.gbps.toFixed(2)}`,
      );
    }
    const ratio = (a: number, b: number): string => (a / b).toFixed(2);
    console.log(
      `\nmesh / direct:  req/s ${ratio(mesh.http.reqPerSec, direct.http.reqPerSec)} (target >= 0.9), iperf3 ${ratio(mesh.gbps, direct.gbps)}`,
    );
    console.log(
      `mesh / HAProxy: req/s ${ratio(mesh.http.reqPerSec, haproxy.http.reqPerSec)} (target >= 3), iperf3 ${ratio(mesh.gbps, haproxy.gbps)}, p99 ${ratio(haproxy.http.p99Ms, mesh.http.p99Ms)} x lower`,
    );
    // Ratios within each repetition (paths run back to back) resist a neighbour's load drifting between reps.
    const paired = (f: (x: { http: HttpFigures; gbps: number }) => number, a: string, b: string): string =>
      median(samples.get(a)!.map((x, i) => f(x) / f(samples.get(b)![i]!))).toFixed(2);
    const [d, m, h] = paths.map((p) => p.name) as [string, string, string];
    console.log(
      `paired per repetition (median): mesh/direct req/s ${paired((x) => x.http.reqPerSec, m, d)}, iperf3 ${paired((x) => x.gbps, m, d)}; ` +
        `mesh/HAProxy req/s ${paired((x) => x.http.reqPerSec, m, h)}, iperf3 ${paired((x) => x.gbps, m, h)}`,
    );
    console.log(JSON.stringify({ event: 'bench.mesh.throughput', seconds, reps, loadavg: loadBefore, rows }));
  } finally {
    lb?.close();
    await lab.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
