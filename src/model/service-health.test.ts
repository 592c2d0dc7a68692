import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { Cluster } from './cluster.js';
import { lifecycleAfterUpdate } from './service-health.js';

const check = { cmd: 'test -f /tmp/ok', intervalMs: 1_000, timeoutMs: 500, retries: 1, startPeriodMs: 0 };

describe('lifecycleAfterUpdate', () => {
  it('keeps what the update leaves out, replaces what it gives, and null removes the check', () => {
    const base = { healthcheck: check, restartPolicy: { condition: 'none' as const } };
    expect(lifecycleAfterUpdate(base, {})).toEqual(base);
    expect(lifecycleAfterUpdate(base, { restartPolicy: { maxAttempts: 2 } })).toEqual({ healthcheck: check, restartPolicy: { maxAttempts: 2 } });
    expect(lifecycleAfterUpdate(base, { healthcheck: null })).toEqual({ restartPolicy: { condition: 'none' } });
    expect(lifecycleAfterUpdate({}, {})).toEqual({});
  });
});

describe('a service\'s health check and restart policy in the store', () => {
  let dir: string;
  let store: SqliteKvStore;
  let cluster: Cluster;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshnet-health-'));
    store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
    cluster = new Cluster(store);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('are stored at create, carried through an unrelated update, and removed on request', async () => {
    const created = await cluster.createService({ name: 'web', command: ['x'], healthcheck: check, restartPolicy: { condition: 'on-failure', delayMs: 5_000 } });
    expect(created).toMatchObject({ healthcheck: check, restartPolicy: { condition: 'on-failure', delayMs: 5_000 } });
    const scaled = await cluster.updateService('web', { replicas: 3 });
    expect(scaled).toMatchObject({ healthcheck: check, restartPolicy: { condition: 'on-failure', delayMs: 5_000 } });
    const removed = await cluster.updateService('web', { healthcheck: null });
    expect(removed.healthcheck).toBeUndefined();
    expect((await cluster.getService('web'))?.restartPolicy).toEqual({ condition: 'on-failure', delayMs: 5_000 });
  });

  it('a service without them stores neither field', async () => {
    const plain = await cluster.createService({ name: 'plain', command: ['x'] });
    expect('healthcheck' in plain || 'restartPolicy' in plain).toBe(false);
  });

  it('refuses a check that would fork without pause', async () => {
    await expect(cluster.createService({ name: 'bad', command: ['x'], healthcheck: { ...check, intervalMs: 1 } })).rejects.toThrow(/health interval: at least 100ms/);
  });
});
