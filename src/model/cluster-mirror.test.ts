import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { silentLogger } from '../log/logger.js';
import { Cluster } from './cluster.js';
import { ClusterMirror } from './cluster-mirror.js';
import * as keys from './keys.js';

let dir: string;
let store: SqliteKvStore;
let cluster: Cluster;
let mirror: ClusterMirror | undefined;
let changes = 0;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-mirror-'));
  store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
  cluster = new Cluster(store);
  await cluster.createNetwork({ name: 'appnet' });
  await cluster.createService({ name: 'api', networks: ['appnet'], replicas: 1, command: ['/bin/api'] });
  await cluster.createService({ name: 'web', networks: ['appnet'], replicas: 1, command: ['/bin/web'] });
  changes = 0;
});

afterEach(async () => {
  mirror?.close();
  mirror = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const open = async (rawPrefixes: string[] = []) => (mirror = await ClusterMirror.open(store, { log: silentLogger(), onChange: () => void changes++, rawPrefixes }));
const service = (m: ClusterMirror, name: string) => m.snapshot().services.find((s) => s.name === name);

describe('ClusterMirror', () => {
  test('follows the store; an unchanged record keeps its object, a changed one gets a new one', async () => {
    const m = await open();
    const api = service(m, 'api')!;
    const web = service(m, 'web')!;
    await cluster.scaleService('web', 3);
    await until('web scaled', () => service(m, 'web')?.replicas === 3);
    expect(service(m, 'api')).toBe(api);
    expect(service(m, 'web')).not.toBe(web);
    expect(changes).toBeGreaterThan(0);
    expect(m.snapshot()).toBe(m.snapshot());
  });

  test('a record that fails validation is reported and never read as a deletion: the last valid one stays', async () => {
    const m = await open();
    const before = service(m, 'api')!;
    await store.put(keys.serviceKey('api'), JSON.stringify({ ...before, replicas: 'many' }));
    await until('the invalid record to be reported', () => m.invalid.length === 1);
    expect(m.invalid[0]).toMatchObject({ key: keys.serviceKey('api'), keptPrevious: true });
    expect(m.snapshot().invalid).toHaveLength(1);
    expect(service(m, 'api')).toBe(before);
    await store.put(keys.serviceKey('api'), JSON.stringify({ ...before, replicas: 2 }));
    await until('the valid record', () => service(m, 'api')?.replicas === 2);
    expect(m.invalid).toEqual([]);
  });

  test('a deletion removes the record; a full re-read keeps what did not change', async () => {
    const m = await open();
    const api = service(m, 'api')!;
    await store.delete(keys.serviceKey('web'));
    await until('web gone', () => service(m, 'web') === undefined);
    await m.relist();
    expect(service(m, 'api')).toBe(api);
  });

  test('keeps raw values of other prefixes it is asked to follow', async () => {
    const m = await open(['/meshnet/extra/']);
    await store.put('/meshnet/extra/a', '1');
    await until('the raw value', () => m.raw('/meshnet/extra/').get('/meshnet/extra/a') === '1');
    await store.delete('/meshnet/extra/a');
    await until('the raw delete', () => m.raw('/meshnet/extra/').size === 0);
  });

  test('follows nodes\' persistent records beside the live ones: availability changes, a dead node stays, rm removes', async () => {
    const reg = await cluster.registerNode({ id: 'host-a', name: 'host-a', underlayIp: '192.168.0.1' }, { ttlSeconds: 0.6 });
    const m = await open();
    expect(m.snapshot().nodes.map((n) => n.id)).toEqual(['host-a']);
    expect(m.snapshot().nodeInfo.map((i) => `${i.id}=${i.availability}`)).toEqual(['host-a=active']);
    await cluster.updateNode('host-a', { availability: 'drain' });
    await until('the drain to be seen', () => m.snapshot().nodeInfo[0]?.availability === 'drain');
    reg.stop();
    await until('host-a to leave the live nodes', () => m.snapshot().nodes.length === 0);
    expect(m.snapshot().nodeInfo.map((i) => i.id)).toEqual(['host-a']);
    await cluster.removeNode('host-a');
    await until('the persistent record to go', () => m.snapshot().nodeInfo.length === 0);
    await store.put(keys.nodeInfoKey('host-b'), JSON.stringify({ id: 'host-b', availability: 'sometimes' }));
    await until('the invalid record to be reported', () => m.invalid.length === 1);
    expect(m.snapshot().nodeInfo).toEqual([]);
  });
});

