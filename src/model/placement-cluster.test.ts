import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { Cluster } from './cluster.js';
import { InvalidSpecError, RecordInvalidError } from './model-errors.js';
import * as keys from './keys.js';

// Mode and placement through the Cluster model on a real (embedded) store: what create and update store and refuse.

let dir: string;
let store: SqliteKvStore;
let cluster: Cluster;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-placement-'));
  store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
  cluster = new Cluster(store, { now: () => new Date('2026-01-01T00:00:00Z') });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('service mode and placement in the store', () => {
  test('a plain service is stored without mode or placement, as before', async () => {
    const rec = await cluster.createService({ name: 'web', command: ['/bin/app'] });
    expect(rec).not.toHaveProperty('mode');
    expect(rec).not.toHaveProperty('placement');
    expect(rec.replicas).toBe(1);
  });

  test('global: stored with 0 replicas, refuses replicas, scale and a mode change; claims any slot number', async () => {
    await expect(cluster.createService({ name: 'g', mode: 'global', replicas: 2, command: ['/bin/app'] })).rejects.toThrow(/replicas cannot be given for a global service/);
    const rec = await cluster.createService({ name: 'g', mode: 'global', command: ['/bin/app'], placement: { constraints: ['node.labels.zone == eu'] } });
    expect(rec).toMatchObject({ mode: 'global', replicas: 0, placement: { constraints: ['node.labels.zone==eu'] } });
    await expect(cluster.scaleService('g', 3)).rejects.toThrow(/g is global: .*cannot be scaled/);
    await expect(cluster.updateService('g', { mode: 'replicated' })).rejects.toThrow(/the mode is fixed at creation/);
    const reg = await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' });
    try {
      expect((await cluster.claimTask('g', 4, 'n1')).slot).toBe(4);
      await expect(cluster.claimTask('g', Cluster.EXTERNAL_SLOT_BASE, 'n1')).rejects.toThrow(InvalidSpecError);
    } finally {
      await reg.close();
    }
  });

  test('update adds and removes constraints and sets the cap, keeping everything else', async () => {
    await cluster.createService({ name: 'web', replicas: 4, command: ['/bin/app'], env: { A: '1' }, placement: { constraints: ['node.id!=a'] } });
    const rec = await cluster.updateService('web', { placement: { constraintAdd: ['node.labels.zone==eu'], constraintRm: ['node.id != a'], maxReplicasPerNode: 1 } });
    expect(rec).toMatchObject({ replicas: 4, env: { A: '1' }, placement: { constraints: ['node.labels.zone==eu'], maxReplicasPerNode: 1 } });
    const scaled = await cluster.scaleService('web', 5);
    expect(scaled.placement).toEqual({ constraints: ['node.labels.zone==eu'], maxReplicasPerNode: 1 });
    await expect(cluster.updateService('web', { placement: { constraintAdd: ['node.role==manager'] } })).rejects.toThrow(RecordInvalidError);
  });

  test('a stored bad constraint is an invalid record in the snapshot, not a missing service', async () => {
    await cluster.createService({ name: 'web', command: ['/bin/app'] });
    const key = keys.serviceKey('web');
    const stored = JSON.parse((await store.get(key))!.value) as Record<string, unknown>;
    await store.put(key, JSON.stringify({ ...stored, placement: { constraints: ['node.role==manager'] } }));
    const snap = await cluster.snapshot();
    expect(snap.services).toEqual([]);
    expect(snap.invalid).toEqual([expect.objectContaining({ key, kind: 'service', error: expect.stringMatching(/unknown attribute "node.role"/) })]);
  });
});
