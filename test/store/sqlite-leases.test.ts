import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { machineLeaseClock } from '../../src/store/lease-clock.js';
import { SqliteKvStore } from '../../src/store/sqlite-store.js';
import { LeaseNotFoundError } from '../../src/store/store-errors.js';
import { waitFor } from './backends.js';

// SQLite leases expire by the machine's monotonic clock: a wall-clock step (NTP, `date -s`, a resumed VM) must
// neither expire every lease at once nor keep a dead node's lease alive.

const HOUR_MS = 3_600_000;

describe('sqlite leases and the clock', () => {
  let dir: string;
  let store: SqliteKvStore;
  const realNow = Date.now.bind(Date);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshnet-leases-'));
    store = new SqliteKvStore(join(dir, 'state.db'), { leaseSweepIntervalMs: 20 });
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a wall-clock step forward expires no lease, and keepAlive still works', async () => {
    const lease = await store.grantLease(10);
    await store.put('/l/node', 'n', { lease });
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + HOUR_MS);
    await store.sweepExpiredLeases();
    await new Promise((r) => setTimeout(r, 100)); // a few periodic sweeps too
    expect((await store.get('/l/node'))?.lease).toBe(lease);
    await store.keepAlive(lease);
  });

  test('a wall-clock step backward does not keep an unrefreshed lease alive', async () => {
    const lease = await store.grantLease(0.3);
    await store.put('/l/dead', 'n', { lease });
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - HOUR_MS);
    await waitFor('the lease to expire', async () => (await store.get('/l/dead')) === undefined, 5000);
    await expect(store.keepAlive(lease)).rejects.toBeInstanceOf(LeaseNotFoundError);
  });

  test('after the store was out of reach, every lease gets its TTL again instead of lapsing at once (etcd promote)', async () => {
    let mono = 1_000_000;
    const clock = { bootId: machineLeaseClock().bootId, nowMs: () => mono };
    const h = new SqliteKvStore(join(dir, 'own-clock.db'), { leaseSweepIntervalMs: 60_000, leaseClock: clock, outageGapMs: 2000 });
    try {
      const lease = await h.grantLease(1);
      await h.put('/l/held', 'n', { lease });
      await h.sweepExpiredLeases();
      mono += 30_000; // 30 s in which this handle could not reach the store (nobody could renew)
      await h.sweepExpiredLeases();
      expect((await h.get('/l/held'))?.lease).toBe(lease);
      mono += 500;
      await h.sweepExpiredLeases();
      expect((await h.get('/l/held'))?.lease).toBe(lease);
      mono += 1000; // a full TTL after the store came back, unrenewed: now it lapses
      await h.sweepExpiredLeases();
      expect(await h.get('/l/held')).toBeUndefined();
    } finally {
      await h.close();
    }
  });

  test('an idle handle sweeps when a lease is due, not five times a second, and a lease granted elsewhere still lapses on time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      const clock = { bootId: machineLeaseClock().bootId, nowMs: () => Date.now() };
      const path = join(dir, 'sweep.db');
      const h = new SqliteKvStore(path, { leaseClock: clock });
      // The other process: it never sweeps within the test, so only `h` can expire its lease.
      const other = new SqliteKvStore(path, { leaseClock: clock, leaseSweepIntervalMs: 3_600_000 });
      try {
        const sweeps = vi.spyOn(h, 'sweepExpiredLeases');
        const live = await h.grantLease(60);
        await h.put('/l/live', 'n', { lease: live });
        await vi.advanceTimersByTimeAsync(10_000);
        // The old fixed 200 ms timer swept 50 times in these 10 s; the longest wait is 1 s.
        expect(sweeps.mock.calls.length).toBeGreaterThanOrEqual(9);
        expect(sweeps.mock.calls.length).toBeLessThanOrEqual(11);

        const short = await other.grantLease(2);
        await other.put('/l/short', 'n', { lease: short });
        await vi.advanceTimersByTimeAsync(1_900);
        expect((await h.get('/l/short'))?.lease).toBe(short);
        // Seen within a second of its grant, so swept at its deadline, not up to a second after it.
        await vi.advanceTimersByTimeAsync(300);
        expect(await h.get('/l/short')).toBeUndefined();
        expect((await h.get('/l/live'))?.lease).toBe(live);

        const own = await h.grantLease(0.3);
        await h.put('/l/own', 'n', { lease: own });
        await vi.advanceTimersByTimeAsync(350);
        expect(await h.get('/l/own')).toBeUndefined();
      } finally {
        await other.close();
        await h.close();
      }
    } finally {
      vi.useRealTimers();
    }
  });

  test('a lease granted before a reboot has expired', async () => {
    const before = new SqliteKvStore(store.path, { leaseSweepIntervalMs: 60_000, leaseClock: { bootId: 'an-earlier-boot', nowMs: () => 1_000 } });
    try {
      const lease = await before.grantLease(3600);
      await before.put('/l/old', 'n', { lease });
    } finally {
      await before.close();
    }
    await store.sweepExpiredLeases();
    expect(await store.get('/l/old')).toBeUndefined();
  });

  test('a store file from before the monotonic clock opens; its leases renew onto it or expire', async () => {
    const path = join(dir, 'old.db');
    const old = new Database(path);
    old.exec(`
      CREATE TABLE leases (id INTEGER PRIMARY KEY AUTOINCREMENT, ttl_ms INTEGER NOT NULL, expires_at INTEGER NOT NULL);
      INSERT INTO leases(id, ttl_ms, expires_at) VALUES (7, 10000, ${realNow() + 10_000}), (8, 10000, ${realNow() - 1});
    `);
    old.close();
    const upgraded = new SqliteKvStore(path, { leaseSweepIntervalMs: 60_000 });
    try {
      await upgraded.keepAlive('7');
      await upgraded.put('/l/live', 'n', { lease: '7' });
      await upgraded.sweepExpiredLeases();
      expect((await upgraded.get('/l/live'))?.lease).toBe('7');
      await expect(upgraded.keepAlive('8')).rejects.toBeInstanceOf(LeaseNotFoundError);
      // Renewed onto the monotonic clock, lease 7 no longer cares about the wall clock either.
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + HOUR_MS);
      await upgraded.sweepExpiredLeases();
      expect((await upgraded.get('/l/live'))?.lease).toBe('7');
    } finally {
      await upgraded.close();
    }
  });

  test('the machine clock is shared by processes: it counts from boot, not from process start', () => {
    const clock = machineLeaseClock();
    expect(clock.bootId).toMatch(/^[0-9a-f-]{36}$/);
    // Process uptime is far below the time since boot on any machine that has run for a second before this test.
    expect(clock.nowMs()).toBeGreaterThan(process.uptime() * 1000);
  });
});
