/**
 * Agent start over an existing nftables table: how long a new NftBackend's first apply takes to
 * be ready when the kernel already holds exactly the wanted table (10,000 services x 10 backends:
 * the digest matches, nothing is read back), how long when one service differs (read back, then
 * one incremental change), and the first change after each.
 * Run: npm run build && node dist/bench/vip/nft-adopt.js [services]
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { NetnsDir } from '../../src/sandbox/netns.js';
import type { LbTable } from '../../src/vip/lb-table.js';
import { NftBackend } from '../../src/vip/nft/nft-backend.js';
import { loadavg } from 'node:os';
import { fmt, inPrivatePidNamespace, lastPid, machineLoad, round, timedWithStall, withChange } from './measure.js';
import { syntheticTable } from './synthetic-table.js';

const BACKENDS = 10;
const line = (name: string, v: string) => console.log(`  ${name.padEnd(52)} ${v}`);

/** A new backend's first apply of `table`: milliseconds, how it adopted, the worst event-loop stall. */
async function start(ns: string, table: LbTable): Promise<{ backend: NftBackend; ms: number; cpuMs: number; by: string; stallMs: number }> {
  const backend = new NftBackend(ns);
  const { ms, cpuMs, stallMs } = await timedWithStall(() => backend.apply(table));
  return { backend, ms, cpuMs, by: backend.lastApply.adoptedBy ?? backend.lastApply.mode, stallMs };
}

async function firstChange(backend: NftBackend, table: LbTable, services: number): Promise<number> {
  const t0 = performance.now();
  await backend.apply(withChange(table, services - 1, 0, 7));
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const services = Number(process.argv[2] ?? 10000);
  const tag = `${services / 1000}k`;
  const root = `/run/meshnet-bench-vip-${randomBytes(3).toString('hex')}`;
  const dir = new NetnsDir(`${root}/netns`);
  try {
    const ns = dir.create('adopt');
    const loaded = new NftBackend(ns);
    const c0 = performance.now();
    await loaded.apply(syntheticTable(services, BACKENDS));
    const coldMs = performance.now() - c0;
    loaded.close();

    // A new agent builds its table afresh: equal content, no shared objects.
    const pid0 = lastPid();
    const fresh = syntheticTable(services, BACKENDS);
    const same = await start(ns, fresh);
    const startTasks = lastPid() - pid0;
    if (same.by !== 'digest') throw new Error(`expected an adoption by digest, got ${same.by}`);
    const afterSame = await firstChange(same.backend, fresh, services);
    same.backend.close();

    // The table changed while no agent ran (one backend of one service): read back, then one change.
    const changed = withChange(syntheticTable(services, BACKENDS), 0, 0, 3);
    const differ = await start(ns, changed);
    const afterDiffer = await firstChange(differ.backend, changed, services);
    differ.backend.close();

    console.log(`${services} services x ${BACKENDS} backends already in the kernel (cold load took ${fmt(coldMs)}; ${machineLoad()})`);
    line('start, identical table (digest matches)', `${fmt(same.ms)} (CPU ${fmt(same.cpuMs)}); event loop stalled at most ${fmt(same.stallMs)}`);
    line('  first one-backend change after it', fmt(afterSame));
    line('  processes or threads started by the start', String(startTasks));
    line(`start, one service differs (${differ.by})`, `${fmt(differ.ms)} (CPU ${fmt(differ.cpuMs)}); event loop stalled at most ${fmt(differ.stallMs)}`);
    line('  first one-backend change after it', fmt(afterDiffer));
    console.log(
      JSON.stringify({
        bench: 'vip-nft-adopt',
        services,
        backendsPerService: BACKENDS,
        [`adoptIdenticalMs_${tag}`]: round(same.ms),
        [`adoptIdenticalCpuMs_${tag}`]: round(same.cpuMs),
        [`adoptIdenticalLoopStallMs_${tag}`]: round(same.stallMs),
        [`firstChangeAfterAdoptMs_${tag}`]: round(afterSame),
        [`adoptDifferingMs_${tag}`]: round(differ.ms),
        [`adoptDifferingCpuMs_${tag}`]: round(differ.cpuMs),
        [`adoptDifferingLoopStallMs_${tag}`]: round(differ.stallMs),
        [`coldLoadMs_${tag}`]: round(coldMs),
        processesStartedByStart: startTasks,
        loadAverage: round(loadavg()[0]!),
      }),
    );
  } finally {
    dir.removeAll();
    rmSync(root, { recursive: true, force: true });
  }
}

if (inPrivatePidNamespace()) await main();
