import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { KvStore } from '../../src/store/kv-store.js';
import { EtcdKvStore } from '../../src/store/etcd-store.js';
import { SqliteKvStore } from '../../src/store/sqlite-store.js';
import { EtcdTestServer } from '../../test/store/etcd-server.js';

// put → watch event latency on both backends: how long after a write an agent hears of it.
// Sequential (one write in flight) so each figure is the latency itself, not queueing.
// Usage: node dist/bench/store/watch-latency.js [samples]

const SAMPLES = Number(process.argv[2] ?? 300);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const figures: Record<string, number> = {};

async function measure(label: string, writer: KvStore, watcher: KvStore): Promise<void> {
  const prefix = `/bench/${label.replace(/\W+/g, '-')}/`;
  let waiting: ((at: number) => void) | undefined;
  const watch = await watcher.watch(prefix, {}, () => {
    const at = performance.now();
    waiting?.(at);
  });
  const latencies: number[] = [];
  try {
    for (let i = 0; i < SAMPLES + 10; i++) {
      const seen = new Promise<number>((resolve) => (waiting = resolve));
      const start = performance.now();
      await writer.put(`${prefix}k`, String(i));
      const at = await seen;
      if (i >= 10) latencies.push(at - start); // the first few warm up connections and statements
      // Write at a random phase of the watcher's poll timer (period ≤ 25 ms); writing right after an event
      // would always land just after a poll and report the full interval.
      await new Promise((r) => setTimeout(r, Math.random() * 30));
    }
  } finally {
    watch.close();
  }
  latencies.sort((a, b) => a - b);
  const fmt = (n: number): string => n.toFixed(2).padStart(7);
  process.stdout.write(
    `${label.padEnd(44)} n=${latencies.length}  p50=${fmt(percentile(latencies, 50))} ms  p99=${fmt(percentile(latencies, 99))} ms  max=${fmt(latencies[latencies.length - 1]!)} ms\n`,
  );
  const name = label.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase());
  figures[`${name}P50Ms`] = Number(percentile(latencies, 50).toFixed(2));
  figures[`${name}P99Ms`] = Number(percentile(latencies, 99).toFixed(2));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshnet-bench-'));
  const path = join(dir, 'state.db');
  const etcd = await EtcdTestServer.start();
  const handles: KvStore[] = [];
  try {
    const open = <T extends KvStore>(s: T): T => {
      handles.push(s);
      return s;
    };
    const a = open(new SqliteKvStore(path));
    await measure('sqlite, same handle', a, a);
    await measure('sqlite, other handle, poll 25 ms (default)', a, open(new SqliteKvStore(path)));
    await measure('sqlite, other handle, poll 10 ms', a, open(new SqliteKvStore(path, { pollIntervalMs: 10 })));
    const e1 = open(new EtcdKvStore({ endpoints: [etcd.endpoint] }));
    const e2 = open(new EtcdKvStore({ endpoints: [etcd.endpoint] }));
    await measure('etcd, same client', e1, e1);
    await measure('etcd, other client', e1, e2);
    process.stdout.write(`${JSON.stringify({ bench: 'store-watch-latency', samples: SAMPLES, ...figures })}\n`);
  } finally {
    for (const h of handles) await h.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${String(err?.stack ?? err)}\n`);
  process.exitCode = 1;
});
