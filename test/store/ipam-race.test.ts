import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Cluster, type NodeRegistration } from '../../src/model/cluster.js';
import { openStore } from '../../src/store/open-store.js';
import { EtcdTestServer } from './etcd-server.js';
import { runAllocator, type AllocatorResult } from './ipam-race-scenario.js';

// 20 allocators with their own store handles race for subnets, VNIs, VIPs, task IPs and ports on one store.
// Whatever interleaving happens, nothing may be handed out twice and nothing handed out may be missing.

const ALLOCATORS = 20;

function expectNoDuplicates(label: string, values: string[]): void {
  const seen = new Map<string, number>();
  for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
  const dupes = [...seen].filter(([, n]) => n > 1).map(([v]) => v);
  expect(dupes, `${label} handed out twice`).toEqual([]);
}

async function checkOutcome(address: string, results: AllocatorResult[]): Promise<void> {
  expect(results).toHaveLength(ALLOCATORS);
  expectNoDuplicates('subnet', results.map((r) => r.network.subnet));
  expectNoDuplicates('VNI', results.map((r) => String(r.network.vni)));
  expectNoDuplicates('published port', results.flatMap((r) => r.ports.map(String)));
  expectNoDuplicates('address', [...results.flatMap((r) => Object.entries(r.vips).map(([n, ip]) => `${n}/${ip}`)), ...results.flatMap((r) => r.taskIps)]);
  expect(results.filter((r) => r.wonContestedPort)).toHaveLength(1);

  // The store agrees with what the allocators were told.
  const store = await openStore(address);
  try {
    const snap = await new Cluster(store).snapshot();
    const networks = new Map(snap.networks.map((n) => [n.name, n]));
    for (const r of results) {
      expect(networks.get(`net-${r.index}`)).toMatchObject(r.network);
      expect(snap.services.find((s) => s.name === `svc-${r.index}`)?.vips).toEqual(r.vips);
    }
    expect(snap.tasks).toHaveLength(ALLOCATORS * 3);
    expectNoDuplicates('stored task address', snap.tasks.flatMap((t) => Object.entries(t.addresses).map(([n, a]) => `${n}/${a.ip}`)));
    expectNoDuplicates('stored VNI', snap.networks.map((n) => String(n.vni)));
    const { kvs } = await store.range('/meshnet/ipam/ips/shared/');
    // gateway + 20 VIPs + 60 task addresses, each claimed exactly once.
    expect(kvs).toHaveLength(1 + ALLOCATORS + ALLOCATORS * 3);
  } finally {
    await store.close();
  }
}

async function prepare(address: string): Promise<NodeRegistration[]> {
  const store = await openStore(address);
  const cluster = new Cluster(store);
  await cluster.createNetwork({ name: 'shared', subnet: '10.100.0.0/24' });
  const regs: NodeRegistration[] = [];
  for (let i = 0; i < ALLOCATORS; i++) regs.push(await cluster.registerNode({ id: `node-${i}`, name: `node-${i}`, underlayIp: `192.168.50.${i + 1}` }, { ttlSeconds: 30 }));
  return regs.map((r) => ({
    node: r.node,
    lease: r.lease,
    resumed: r.resumed,
    stop: () => r.stop(),
    close: async () => {
      await r.close();
      if (r === regs[regs.length - 1]) await store.close();
    },
  }));
}

describe('IPAM under 20 concurrent allocators', () => {
  let dir: string;
  let etcd: EtcdTestServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshnet-race-'));
    etcd = await EtcdTestServer.start();
  });

  afterAll(async () => {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('sqlite: 20 handles on one file in this process', async () => {
    const address = `sqlite:${dir}/in-process.db`;
    const regs = await prepare(address);
    try {
      const results = await Promise.all(Array.from({ length: ALLOCATORS }, (_, i) => runAllocator(address, i)));
      await checkOutcome(address, results);
    } finally {
      for (const r of regs) await r.close();
    }
  });

  test('sqlite: 4 processes x 5 handles on one file', async () => {
    const script = resolve('dist/test/store/ipam-race-scenario.js');
    expect(existsSync(script), 'run `npm run build` first').toBe(true);
    const address = `sqlite:${dir}/processes.db`;
    const regs = await prepare(address);
    try {
      const run = promisify(execFile);
      const outputs = await Promise.all([0, 5, 10, 15].map((first) => run(process.execPath, [script, address, String(first), '5'])));
      const results = outputs.flatMap((o) => JSON.parse(o.stdout) as AllocatorResult[]);
      await checkOutcome(address, results);
    } finally {
      for (const r of regs) await r.close();
    }
  });

  test('etcd: 20 clients', async () => {
    const address = `etcd://${etcd.endpoint}`;
    const regs = await prepare(address);
    try {
      const results = await Promise.all(Array.from({ length: ALLOCATORS }, (_, i) => runAllocator(address, i)));
      await checkOutcome(address, results);
    } finally {
      for (const r of regs) await r.close();
    }
  });
});
