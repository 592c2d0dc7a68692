/**
 * nftables VIP backend: cold sync and one-backend change at 1,000 and 10,000 services x 10
 * backends, each inside a throwaway namespace, against the raw `nft -f` time of the same full
 * ruleset. Run: npm run build && node dist/bench/vip/nft-sync.js [services...]
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { execIn } from '../../src/sandbox/exec.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import type { LbTable } from '../../src/vip/lb-table.js';
import { NftBackend } from '../../src/vip/nft/nft-backend.js';
import { renderLbTable } from '../../src/vip/nft/render.js';
import { backendAddress, syntheticTable } from './synthetic-table.js';

const BACKENDS = 10;
const CHANGES = 50;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function fmt(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

/** Replaces backend `b` of service `s` with a fresh address: one backend out, one in. */
function withChange(table: LbTable, s: number, b: number, round: number): LbTable {
  const services = table.services.slice();
  const svc = services[s]!;
  const backends = svc.backends.slice();
  backends[b] = { ...backends[b]!, address: backendAddress(s, 10 + (round % 50)) };
  services[s] = { ...svc, backends };
  return { services };
}

async function changes(backend: NftBackend, start: LbTable, n: number, services: number): Promise<{ times: number[]; ops: number[]; plan: number[]; nft: number[] }> {
  let table = start;
  const times: number[] = [];
  const ops: number[] = [];
  const plan: number[] = [];
  const nft: number[] = [];
  for (let i = 0; i < n; i++) {
    table = withChange(table, (i * 7919) % services, i % BACKENDS, i);
    const t0 = performance.now();
    const r = await backend.apply(table);
    times.push(performance.now() - t0);
    ops.push(r.changes);
    plan.push(backend.lastApply.planMs);
    nft.push(backend.lastApply.nftMs);
  }
  const sort = (a: number[]) => a.sort((x, y) => x - y);
  return { times: sort(times), ops, plan: sort(plan), nft: sort(nft) };
}

async function benchOne(dir: NetnsDir, services: number): Promise<void> {
  const table = syntheticTable(services, BACKENDS);
  const ns = dir.create(`bench-${services}`);
  try {
    const t0 = performance.now();
    const script = renderLbTable(table);
    const renderMs = performance.now() - t0;
    const r0 = performance.now();
    await execIn(ns, ['nft', '-f', '-'], { input: script, timeoutMs: 600_000 });
    const rawMs = performance.now() - r0;
    await execIn(ns, ['nft', 'delete table ip meshnet']);

    const backend = new NftBackend(ns);
    const c0 = performance.now();
    await backend.apply(table);
    const coldMs = performance.now() - c0;

    const session = await changes(backend, table, CHANGES, services);
    const rb0 = performance.now();
    const readBack = await backend.read();
    const readMs = performance.now() - rb0;
    if (readBack.services.length !== services) throw new Error(`read back ${readBack.services.length} services, expected ${services}`);
    backend.close();
    const oneshot = new NftBackend(ns, { transport: 'oneshot' });
    await oneshot.reconcile(table);
    const shot = await changes(oneshot, table, 10, services);
    const rec0 = performance.now();
    await oneshot.reconcile(table);
    const reconcileMs = performance.now() - rec0;
    oneshot.close();

    const line = (name: string, v: string) => console.log(`  ${name.padEnd(44)} ${v}`);
    console.log(`${services} services x ${BACKENDS} backends (${(script.length / 1e6).toFixed(1)} MB script)`);
    line('render full script (JS)', fmt(renderMs));
    line('raw nft -f of the same full ruleset', fmt(rawMs));
    line('cold sync (NftBackend.apply, empty namespace)', `${fmt(coldMs)} = ${(coldMs / rawMs).toFixed(2)} x raw`);
    line('full reconcile (atomic rebuild)', fmt(reconcileMs));
    line('read-back / adoption (nft -j list table)', fmt(readMs));
    line(`one-backend change, nft -i session (n=${CHANGES})`, `p50 ${fmt(percentile(session.times, 50))}  p99 ${fmt(percentile(session.times, 99))}  max ${fmt(session.times.at(-1)!)}  ops/change ${Math.min(...session.ops)}-${Math.max(...session.ops)}`);
    line('  of which computing the transaction (JS)', `p50 ${fmt(percentile(session.plan, 50))}  p99 ${fmt(percentile(session.plan, 99))}`);
    line('  of which nft -i applying it', `p50 ${fmt(percentile(session.nft, 50))}  p99 ${fmt(percentile(session.nft, 99))}`);
    line('one-backend change, one nft -f per change (n=10)', `p50 ${fmt(percentile(shot.times, 50))}  p99 ${fmt(percentile(shot.times, 99))}`);
  } finally {
    dir.delete(`bench-${services}`);
  }
}

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const root = `/run/meshnet-bench-vip-${randomBytes(3).toString('hex')}`;
const dir = new NetnsDir(`${root}/netns`);
try {
  for (const n of sizes.length ? sizes : [1000, 10000]) await benchOne(dir, n);
} finally {
  dir.removeAll();
  rmSync(root, { recursive: true, force: true });
}
