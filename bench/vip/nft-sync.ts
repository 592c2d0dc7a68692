/**
 * nftables VIP backend (in-process libnftables): one-backend change end to end and its planning
 * part, at 1,000 and 10,000 services x 10 backends, each in a throwaway namespace; cold load
 * against raw `nft -f` of the same ruleset; and the tasks (processes or threads) the process
 * started during the measured changes, counted in a private pid namespace.
 * Run: npm run build && node dist/bench/vip/nft-sync.js [services...]
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { execIn } from '../../src/sandbox/exec.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { ElementCache } from '../../src/vip/nft/element-cache.js';
import { NftBackend } from '../../src/vip/nft/nft-backend.js';
import { renderLbTable } from '../../src/vip/nft/render.js';
import { loadavg } from 'node:os';
import { fmt, inPrivatePidNamespace, lastPid, machineLoad, percentile, round, timedWithStall, withChange } from './measure.js';
import { syntheticTable } from './synthetic-table.js';

const BACKENDS = 10;
const CHANGES = 200;
const PLAN_CHANGES = 1000;

const sorted = (a: number[]) => a.slice().sort((x, y) => x - y);
const line = (name: string, v: string) => console.log(`  ${name.padEnd(52)} ${v}`);

/** The planning part alone (ElementCache, no kernel): a one-backend change on a structurally shared table. */
function planning(services: number): { p50: number; p99: number; max: number; cpuP99: number } {
  const cache = new ElementCache();
  let table = syntheticTable(services, BACKENDS);
  cache.plan(table).commit();
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < PLAN_CHANGES + 100; i++) {
    table = withChange(table, (i * 7919) % services, i % BACKENDS, i);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const pending = cache.plan(table);
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    pending.commit();
    if (i >= 100) {
      // The first hundred warm the JIT.
      times.push(dt);
      cpu.push((c.user + c.system) / 1000);
    }
  }
  const s = sorted(times);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1)!, cpuP99: percentile(sorted(cpu), 99) };
}

interface KernelFigures {
  rawMs: number;
  coldMs: number;
  coldCpuMs: number;
  coldLoopStallMs: number;
  e2e: number[];
  e2eCpu: number[];
  plan: number[];
  nft: number[];
  ops: number[];
  tasksStarted: number;
  reconcileMs: number;
  reconcileLoopStallMs: number;
  readMs: number;
}

async function kernel(dir: NetnsDir, services: number): Promise<KernelFigures> {
  const table = syntheticTable(services, BACKENDS);
  const name = `bench-${services}`;
  const ns = dir.create(name);
  try {
    const script = renderLbTable(table);
    const r0 = performance.now();
    await execIn(ns, ['nft', '-f', '-'], { input: script, timeoutMs: 600_000 });
    const rawMs = performance.now() - r0;
    await execIn(ns, ['nft', 'delete table ip meshnet']);

    const backend = new NftBackend(ns);
    const { ms: coldMs, cpuMs: coldCpuMs, stallMs: coldLoopStallMs } = await timedWithStall(() => backend.apply(table));

    let t = table;
    for (let i = 0; i < 20; i++) await backend.apply((t = withChange(t, (i * 104729) % services, i % BACKENDS, i + 25)));
    const e2e: number[] = [];
    const e2eCpu: number[] = [];
    const plan: number[] = [];
    const nft: number[] = [];
    const ops: number[] = [];
    const pid0 = lastPid();
    for (let i = 0; i < CHANGES; i++) {
      t = withChange(t, (i * 7919) % services, i % BACKENDS, i);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await backend.apply(t);
      e2e.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      e2eCpu.push((c.user + c.system) / 1000);
      ops.push(r.changes);
      plan.push(backend.lastApply.planMs);
      nft.push(backend.lastApply.nftMs);
    }
    const tasksStarted = lastPid() - pid0;

    const { ms: reconcileMs, stallMs: reconcileLoopStallMs } = await timedWithStall(() => backend.reconcile(t));
    const rb0 = performance.now();
    const readBack = await backend.read();
    const readMs = performance.now() - rb0;
    if (readBack.services.length !== services) throw new Error(`read back ${readBack.services.length} services, expected ${services}`);
    backend.close();
    return { rawMs, coldMs, coldCpuMs, coldLoopStallMs, e2e: sorted(e2e), e2eCpu: sorted(e2eCpu), plan: sorted(plan), nft: sorted(nft), ops, tasksStarted, reconcileMs, reconcileLoopStallMs, readMs };
  } finally {
    dir.delete(name);
  }
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const root = `/run/meshnet-bench-vip-${randomBytes(3).toString('hex')}`;
  const dir = new NetnsDir(`${root}/netns`);
  const summary: Record<string, number | string> = { bench: 'vip-nft-sync', backendsPerService: BACKENDS };
  try {
    for (const n of sizes.length ? sizes : [1000, 10000]) {
      const p = planning(n);
      const k = await kernel(dir, n);
      const tag = n >= 1000 ? `${n / 1000}k` : String(n);
      console.log(`${n} services x ${BACKENDS} backends (${machineLoad()})`);
      line('raw nft -f of the full ruleset (one process)', fmt(k.rawMs));
      line('cold load (NftBackend.apply, empty namespace)', `${fmt(k.coldMs)} = ${(k.coldMs / k.rawMs).toFixed(2)} x raw (CPU ${fmt(k.coldCpuMs)}); event loop stalled at most ${fmt(k.coldLoopStallMs)}`);
      line(`one-backend change end to end (n=${CHANGES})`, `p50 ${fmt(percentile(k.e2e, 50))}  p99 ${fmt(percentile(k.e2e, 99))}  max ${fmt(k.e2e.at(-1)!)}  (CPU p99 ${fmt(percentile(k.e2eCpu, 99))})  ops ${Math.min(...k.ops)}-${Math.max(...k.ops)}`);
      line('  of which planning (JS)', `p50 ${fmt(percentile(k.plan, 50))}  p99 ${fmt(percentile(k.plan, 99))}`);
      line('  of which libnftables (parse, commit)', `p50 ${fmt(percentile(k.nft, 50))}  p99 ${fmt(percentile(k.nft, 99))}`);
      line(`planning alone, ElementCache (n=${PLAN_CHANGES})`, `p50 ${fmt(p.p50)}  p99 ${fmt(p.p99)}  max ${fmt(p.max)}  (CPU p99 ${fmt(p.cpuP99)})`);
      line('processes or threads started during the changes', String(k.tasksStarted));
      line('full reconcile (atomic rebuild)', `${fmt(k.reconcileMs)}; event loop stalled at most ${fmt(k.reconcileLoopStallMs)}`);
      line('read-back (list table as JSON, parse)', fmt(k.readMs));
      Object.assign(summary, {
        [`changeP50Ms_${tag}`]: round(percentile(k.e2e, 50)),
        [`changeP99Ms_${tag}`]: round(percentile(k.e2e, 99)),
        [`changeCpuP99Ms_${tag}`]: round(percentile(k.e2eCpu, 99)),
        [`changePlanP99Ms_${tag}`]: round(percentile(k.plan, 99)),
        [`planP50Ms_${tag}`]: round(p.p50),
        [`planP99Ms_${tag}`]: round(p.p99),
        [`planCpuP99Ms_${tag}`]: round(p.cpuP99),
        [`coldLoadMs_${tag}`]: round(k.coldMs),
        [`coldLoadCpuMs_${tag}`]: round(k.coldCpuMs),
        [`loadAverage_${tag}`]: round(loadavg()[0]!),
        [`rawNftFMs_${tag}`]: round(k.rawMs),
        [`coldLoopStallMs_${tag}`]: round(k.coldLoopStallMs),
        [`reconcileMs_${tag}`]: round(k.reconcileMs),
        [`readBackMs_${tag}`]: round(k.readMs),
        [`processesStartedDuringChanges_${tag}`]: k.tasksStarted,
      });
    }
  } finally {
    dir.removeAll();
    rmSync(root, { recursive: true, force: true });
  }
  console.log(JSON.stringify(summary));
}

if (inPrivatePidNamespace()) await main();
