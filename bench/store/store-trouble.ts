import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Cluster } from '../../src/model/cluster.js';
import * as keys from '../../src/model/keys.js';
import { EtcdKvStore } from '../../src/store/etcd-store.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { SqliteKvStore } from '../../src/store/sqlite-store.js';
import { EtcdTestServer } from '../../test/store/etcd-server.js';

// What the store-trouble fixes cost, on both backends:
//  - replacing a task (claimTask on another node) with its old address quarantined vs released at once;
//  - an agent restart that resumes its lease: time to register, and how many node keys changed revision (0 wanted);
//  - how long a call to a frozen etcd (SIGSTOP) takes to fail with the default deadline.
// Usage: node dist/bench/store/store-trouble.js [cycles]

const CYCLES = Number(process.argv[2] ?? 100);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (n: number): number => Math.round(n * 100) / 100;

/** p50/p99 of one task replacement (the old task's address released into quarantine, or at once). */
async function replaceCost(store: KvStore, label: string, quarantineSeconds: number): Promise<{ p50: number; p99: number }> {
  const cluster = new Cluster(store, { addressQuarantineSeconds: quarantineSeconds });
  const net = `n${label}${quarantineSeconds}`;
  // A /20 holds every address the quarantined run takes out of circulation during the bench.
  await cluster.createNetwork({ name: net, subnet: `10.${label === 'sq' ? 60 : 61}.${quarantineSeconds > 0 ? 16 : 0}.0/20` });
  const service = `s${label}${quarantineSeconds}`;
  await cluster.createService({ name: service, networks: [net], command: ['x'] });
  const nodes = [
    await cluster.registerNode({ id: `${service}-a`, name: 'a', underlayIp: '192.168.9.1' }, { ttlSeconds: 30 }),
    await cluster.registerNode({ id: `${service}-b`, name: 'b', underlayIp: '192.168.9.2' }, { ttlSeconds: 30 }),
  ];
  const times: number[] = [];
  try {
    for (let i = 0; i < CYCLES + 5; i++) {
      const start = performance.now();
      await cluster.claimTask(service, 1, nodes[i % 2]!.node.id);
      if (i >= 5) times.push(performance.now() - start);
    }
  } finally {
    for (const n of nodes) await n.close();
  }
  times.sort((a, b) => a - b);
  return { p50: round(percentile(times, 50)), p99: round(percentile(times, 99)) };
}

/** Registers a node, "restarts" its agent with resumeLease; returns the resume time and changed node keys. */
async function restartCost(store: KvStore, id: string): Promise<{ resumeMs: number; changedKeys: number }> {
  const cluster = new Cluster(store);
  const spec = { id, name: id, underlayIp: '192.168.9.3' };
  const first = await cluster.registerNode(spec, { ttlSeconds: 10 });
  const before = (await store.get(keys.nodeKey(id)))!.modRevision;
  first.stop();
  const start = performance.now();
  const second = await cluster.registerNode(spec, { ttlSeconds: 10, resumeLease: first.lease() });
  const resumeMs = performance.now() - start;
  const after = (await store.get(keys.nodeKey(id)))!.modRevision;
  await second.close();
  if (!second.resumed) throw new Error('the lease was not resumed');
  return { resumeMs: round(resumeMs), changedKeys: after === before ? 0 : 1 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshnet-bench-trouble-'));
  const etcd = await EtcdTestServer.start();
  const sqlite = new SqliteKvStore(join(dir, 'state.db'));
  const etcdStore = new EtcdKvStore({ endpoints: [etcd.endpoint] });
  try {
    const result: Record<string, number> = {};
    for (const [label, store] of [['sq', sqlite], ['etcd', etcdStore]] as const) {
      const name = label === 'sq' ? 'sqlite' : 'etcd';
      const at0 = await replaceCost(store, label, 0);
      const q30 = await replaceCost(store, label, 30);
      const restart = await restartCost(store, `restart-${label}`);
      process.stdout.write(
        `${name.padEnd(7)} task replacement: address released at once p50=${at0.p50} ms p99=${at0.p99} ms; quarantined 30 s p50=${q30.p50} ms p99=${q30.p99} ms\n` +
          `${name.padEnd(7)} agent restart with resumeLease: ${restart.resumeMs} ms, node keys re-written: ${restart.changedKeys}\n`,
      );
      Object.assign(result, {
        [`${name}ReplaceP50Ms`]: at0.p50,
        [`${name}ReplaceP99Ms`]: at0.p99,
        [`${name}ReplaceQuarantinedP50Ms`]: q30.p50,
        [`${name}ReplaceQuarantinedP99Ms`]: q30.p99,
        [`${name}ResumeLeaseMs`]: restart.resumeMs,
        [`${name}RestartRewrittenKeys`]: restart.changedKeys,
      });
    }
    etcd.pause();
    const start = performance.now();
    const failed = await etcdStore.keepAlive('1').then(
      () => 'answered',
      (err: Error) => err.name,
    );
    const hungMs = round(performance.now() - start);
    etcd.resume();
    process.stdout.write(`etcd frozen (SIGSTOP): keepAlive failed with ${failed} after ${hungMs} ms (default deadline 5000 ms)\n`);
    result['etcdHungKeepAliveFailsAfterMs'] = hungMs;
    process.stdout.write(`${JSON.stringify({ bench: 'store-trouble', cycles: CYCLES, ...result })}\n`);
  } finally {
    etcd.resume();
    await sqlite.close();
    await etcdStore.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${String(err?.stack ?? err)}\n`);
  process.exitCode = 1;
});
