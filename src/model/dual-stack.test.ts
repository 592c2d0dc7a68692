import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { Cluster } from './cluster.js';
import { SubnetOverlapError } from './model-errors.js';

let dir: string;
let store: SqliteKvStore;
let cluster: Cluster;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-dual-'));
  store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
  cluster = new Cluster(store, { now: () => new Date('2026-01-01T00:00:00Z') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('dual-stack allocation', () => {
  test('a v4-only network, its services and tasks carry no v6 field at all', async () => {
    const net = await cluster.createNetwork({ name: 'plain' });
    expect(Object.keys(net)).not.toContain('subnet6');
    await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.0.2.1' });
    const svc = await cluster.createService({ name: 'web', networks: ['plain'], command: ['x'], ports: [{ published: 8000, target: 80 }] });
    expect(svc.vips6).toBeUndefined();
    const task = await cluster.claimTask('web', 1, 'n1');
    expect(Object.values(task.addresses).every((a) => a.ip6 === undefined)).toBe(true);
    expect((await cluster.getNetwork('ingress'))?.subnet6).toBeUndefined();
  });

  test('--ipv6 gives the network a ULA /64, the service v6 VIPs and the task v6 twins; the ingress turns dual stack', async () => {
    const net = await cluster.createNetwork({ name: 'six', ipv6: true });
    expect(net.subnet6).toMatch(/^fd6d:6573:686e:[0-9a-f]{1,4}::\/64$/);
    expect(net.gateway6).toBe(net.subnet6!.replace('::/64', '::1'));
    await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.0.2.1' });
    const svc = await cluster.createService({ name: 'web', networks: ['six'], command: ['x'], ports: [{ published: 8000, target: 80 }] });
    const ingress = (await cluster.getNetwork('ingress'))!;
    expect(ingress.subnet6).toBeDefined();
    const offset = (ip: string) => Number(ip.split('.')[3]);
    expect(svc.vips6?.six).toBe(net.subnet6!.replace('::/64', `::${offset(svc.vips.six!).toString(16)}`));
    expect(svc.vips6?.ingress).toBeDefined();
    const task = await cluster.claimTask('web', 1, 'n1');
    expect(task.addresses.six?.ip6).toBe(net.subnet6!.replace('::/64', `::${offset(task.addresses.six!.ip).toString(16)}`));
    expect(task.addresses.ingress?.ip6).toBeDefined();
  });

  test('an explicit v6 subnet is checked against the others', async () => {
    await cluster.createNetwork({ name: 'a', subnet6: 'fd00:1::/64' });
    await expect(cluster.createNetwork({ name: 'b', subnet6: 'fd00:1::/64' })).rejects.toThrow(SubnetOverlapError);
    await cluster.removeNetwork('a');
    expect((await cluster.createNetwork({ name: 'b', subnet6: 'fd00:1::/64' })).gateway6).toBe('fd00:1::1');
  });
});
