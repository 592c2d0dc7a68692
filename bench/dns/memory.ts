/**
 * Memory per served task namespace: RSS of this process after serving 1 namespace (workers
 * started, code loaded) and after 100 more, divided by 100. Each namespace gets a realistic
 * view (10 services x 3 tasks) and is queried once so that its sockets and tables are live.
 * Usage: node --expose-gc dist/bench/dns/memory.js [count]
 */
import { execIn } from '../../src/sandbox/exec.js';
import { DnsService } from '../../src/dns/dns-service.js';
import { buildNameView, type NameView } from '../../src/dns/name-view.js';
import { BenchLab } from './bench-lab.js';

const count = Number(process.argv[2] ?? 100);

function view(n: number): NameView {
  const services = Array.from({ length: 10 }, (_, i) => ({ name: `svc${i}`, endpointMode: 'vip' as const, attachments: [{ network: 'front', vip: `10.${n % 200}.${i}.2` }] }));
  const tasks = services.flatMap((s, i) => [3, 4, 5].map((h) => ({ name: `${s.name}.${h}`, service: s.name, running: true, ips: [{ network: 'front', ip: `10.${n % 200}.${i}.${h}` }] })));
  return buildNameView({ taskNetworks: ['front'], services, tasks });
}

async function settledRss(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 200));
  }
  return process.memoryUsage().rss;
}

async function main(): Promise<void> {
  const lab = new BenchLab();
  const dns = new DnsService({ upstreams: ['127.0.0.53'], workers: 2, port: 53 });
  try {
    const first = await lab.namespace('t0');
    await dns.attach(first, view(0));
    await execIn(first, ['dig', '+short', '@127.0.0.11', 'svc1'], { timeoutMs: 5000 });
    const paths: string[] = [];
    for (let i = 1; i <= count; i++) paths.push(await lab.namespace(`t${i}`));
    const before = await settledRss();
    const start = Date.now();
    for (let i = 0; i < paths.length; i++) await dns.attach(paths[i]!, view(i + 1));
    const attachMs = (Date.now() - start) / paths.length;
    let ok = 0;
    for (const p of paths) {
      const r = await execIn(p, ['dig', '+short', '+time=2', '@127.0.0.11', 'svc3'], { timeoutMs: 5000, allowFailure: true });
      if (/^10\.\d+\.3\.2$/.test(r.stdout.trim())) ok++;
    }
    const after = await settledRss();
    const perNs = (after - before) / paths.length;
    console.log(`${paths.length} extra namespaces served (${ok} answered correctly), attach ${attachMs.toFixed(1)} ms each`);
    console.log(`RSS ${(before / 1048576).toFixed(1)} MB -> ${(after / 1048576).toFixed(1)} MB: ${(perNs / 1024).toFixed(0)} KB per namespace (target <= 1024 KB)`);
    console.log(JSON.stringify({ bench: 'dns.memory', namespaces: paths.length, answered: ok, attachMs: Number(attachMs.toFixed(1)), kbPerNamespace: Math.round(perNs / 1024) }));
  } finally {
    await dns.close();
    await lab.cleanup();
  }
}

await main();
