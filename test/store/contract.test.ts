import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { KvStore, WatchEvent, WatchHandle } from '../../src/store/kv-store.js';
import { EtcdKvStore } from '../../src/store/etcd-store.js';
import { defaultStoreAddress, openStore, parseStoreAddress } from '../../src/store/open-store.js';
import { SqliteKvStore } from '../../src/store/sqlite-store.js';
import { CompactedError, LeaseNotFoundError, StoreAddressError } from '../../src/store/store-errors.js';
import { etcdBackend, sqliteBackend, waitFor } from './backends.js';

// The same cases run against both backends: the model layer must not be able to tell them apart.

let keyCounter = 0;
function uniquePrefix(name: string): string {
  keyCounter += 1;
  return `/contract/${name}-${keyCounter}/`;
}

describe.each([sqliteBackend(), etcdBackend()])('KvStore contract: $name', (backend) => {
  let store: KvStore;
  const extra: KvStore[] = [];

  function another(): KvStore {
    const handle = backend.open();
    extra.push(handle);
    return handle;
  }

  beforeAll(async () => {
    await backend.setup();
    store = backend.open();
  });

  afterAll(async () => {
    await Promise.all([store, ...extra].map((s) => s.close()));
    await backend.teardown();
  });

  test('put, get, delete track revisions and versions', async () => {
    const p = uniquePrefix('basic');
    const r1 = await store.put(`${p}a`, 'one');
    const r2 = await store.put(`${p}a`, 'two');
    expect(r2).toBeGreaterThan(r1);
    const kv = await store.get(`${p}a`);
    expect(kv).toMatchObject({ key: `${p}a`, value: 'two', createRevision: r1, modRevision: r2, version: 2 });
    expect(kv?.lease).toBeUndefined();
    expect(await store.delete(`${p}a`)).toMatchObject({ deleted: true });
    expect(await store.get(`${p}a`)).toBeUndefined();
    expect((await store.delete(`${p}a`)).deleted).toBe(false);
    const r3 = await store.put(`${p}a`, 'again');
    expect(await store.get(`${p}a`)).toMatchObject({ createRevision: r3, version: 1 });
  });

  test('range returns exactly the prefix, sorted, at the current revision', async () => {
    const p = uniquePrefix('range');
    await store.put(`${p}b`, '2');
    await store.put(`${p}a`, '1');
    await store.put(`${p}a/nested`, '3');
    await store.put(`${p.slice(0, -1)}x`, 'outside');
    const last = await store.put(`${p}c`, '4');
    const result = await store.range(p);
    expect(result.kvs.map((kv) => [kv.key, kv.value])).toEqual([
      [`${p}a`, '1'],
      [`${p}a/nested`, '3'],
      [`${p}b`, '2'],
      [`${p}c`, '4'],
    ]);
    expect(result.revision).toBeGreaterThanOrEqual(last);
    expect((await store.range(`${p}zz`)).kvs).toEqual([]);
  });

  test('txn compare-and-swap: absent, modRevision, version, failure branch', async () => {
    const p = uniquePrefix('cas');
    const create = { compare: [{ key: `${p}k`, absent: true as const }], success: [{ type: 'put' as const, key: `${p}k`, value: 'first' }] };
    const first = await store.txn(create);
    expect(first.succeeded).toBe(true);
    const second = await store.txn(create);
    expect(second.succeeded).toBe(false);
    expect((await store.get(`${p}k`))?.value).toBe('first');

    const kv = (await store.get(`${p}k`))!;
    const stale = await store.txn({
      compare: [{ key: `${p}k`, modRevision: kv.modRevision - 1 }],
      success: [{ type: 'put', key: `${p}k`, value: 'stale' }],
      failure: [{ type: 'put', key: `${p}lost`, value: 'yes' }],
    });
    expect(stale.succeeded).toBe(false);
    expect((await store.get(`${p}lost`))?.value).toBe('yes');
    const fresh = await store.txn({
      compare: [{ key: `${p}k`, modRevision: kv.modRevision }, { key: `${p}k`, version: 1 }],
      success: [{ type: 'put', key: `${p}k`, value: 'second' }, { type: 'delete', key: `${p}lost` }],
    });
    expect(fresh.succeeded).toBe(true);
    expect(fresh.revision).toBeGreaterThan(kv.modRevision);
    expect((await store.get(`${p}k`))?.value).toBe('second');
    expect(await store.get(`${p}lost`)).toBeUndefined();
  });

  test('CAS conflicts between handles lose no increment', async () => {
    const key = `${uniquePrefix('counter')}n`;
    const handles = [store, another(), another(), another()];
    let conflicts = 0;
    await Promise.all(
      handles.map(async (h) => {
        for (let done = 0; done < 15; ) {
          const cur = await h.get(key);
          const compare = cur === undefined ? { key, absent: true as const } : { key, modRevision: cur.modRevision };
          const res = await h.txn({ compare: [compare], success: [{ type: 'put', key, value: String(Number(cur?.value ?? 0) + 1) }] });
          if (res.succeeded) done++;
          else conflicts++;
        }
      }),
    );
    expect((await store.get(key))?.value).toBe('60');
    expect(conflicts).toBeGreaterThan(0);
  });

  test('watch delivers ordered events from a past revision, then live ones', async () => {
    const p = uniquePrefix('watch');
    const from = await store.put(`${p}a`, '1');
    await store.put(`${p}b`, '2');
    await store.put(`${uniquePrefix('other')}x`, 'not watched');
    await store.delete(`${p}a`);
    const events: WatchEvent[] = [];
    const watch = await store.watch(p, { fromRevision: from }, (e) => events.push(e));
    try {
      await store.put(`${p}c`, '3');
      await waitFor('4 events', () => events.length >= 4);
      expect(events.map((e) => [e.type, e.key.slice(p.length), e.value])).toEqual([
        ['put', 'a', '1'],
        ['put', 'b', '2'],
        ['delete', 'a', undefined],
        ['put', 'c', '3'],
      ]);
      const revisions = events.map((e) => e.modRevision);
      expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
      expect(new Set(revisions).size).toBe(revisions.length);
      expect(revisions[0]).toBe(from);
      expect(watch.lastRevision()).toBe(revisions[3]);
    } finally {
      watch.close();
    }
  });

  test('a watch from another handle sees writes of this one', async () => {
    const p = uniquePrefix('cross');
    const other = another();
    const events: WatchEvent[] = [];
    const watch = await other.watch(p, {}, (e) => events.push(e));
    try {
      await store.put(`${p}k`, 'v');
      await waitFor('cross-handle event', () => events.length === 1);
      expect(events[0]).toMatchObject({ type: 'put', key: `${p}k`, value: 'v' });
    } finally {
      watch.close();
    }
  });

  test('a new watcher resumes from last seen revision + 1 without loss or duplicates', async () => {
    const p = uniquePrefix('resume');
    const seen: WatchEvent[] = [];
    let watch: WatchHandle = await store.watch(p, {}, (e) => seen.push(e));
    for (let i = 0; i < 5; i++) await store.put(`${p}k${i}`, String(i));
    await waitFor('first 5', () => seen.length === 5);
    const last = watch.lastRevision();
    watch.close();
    const writer = another();
    for (let i = 5; i < 10; i++) await writer.put(`${p}k${i}`, String(i));
    const resumed = another();
    watch = await resumed.watch(p, { fromRevision: last + 1 }, (e) => seen.push(e));
    try {
      await waitFor('all 10', () => seen.length >= 10);
      await new Promise((r) => setTimeout(r, 100));
      expect(seen.map((e) => e.value)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    } finally {
      watch.close();
    }
  });

  test('a watch keeps its place across a server restart', async () => {
    const p = uniquePrefix('restart');
    const seen: WatchEvent[] = [];
    const watcherStore = another();
    const watch = await watcherStore.watch(p, {}, (e) => seen.push(e));
    try {
      await store.put(`${p}before`, '1');
      await waitFor('event before restart', () => seen.length === 1);
      await backend.restartServer();
      const writer = another();
      for (let i = 0; i < 3; i++) await writer.put(`${p}after${i}`, String(i));
      await waitFor('events after restart', () => seen.length >= 4, 20_000);
      expect(seen.map((e) => e.key.slice(p.length))).toEqual(['before', 'after0', 'after1', 'after2']);
    } finally {
      watch.close();
    }
  });

  test('watching from a compacted revision fails with CompactedError', async () => {
    const p = uniquePrefix('compact');
    const old = await store.put(`${p}a`, '1');
    await store.put(`${p}a`, '2');
    const head = await store.put(`${p}a`, '3');
    await store.compact(head);
    const err = await store.watch(p, { fromRevision: old }, () => undefined).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CompactedError);
    expect((err as CompactedError).code).toBe('STORE_COMPACTED');
    const ok = await store.watch(p, { fromRevision: head }, () => undefined);
    ok.close();
    expect((await store.get(`${p}a`))?.value).toBe('3');
  });

  test('lease expiry deletes attached keys and emits delete events; keepAlive and revoke', async () => {
    const p = uniquePrefix('lease');
    const events: WatchEvent[] = [];
    const watch = await store.watch(p, {}, (e) => events.push(e));
    try {
      const expiring = await store.grantLease(1);
      const kept = await store.grantLease(1);
      const revoked = await store.grantLease(30);
      await store.put(`${p}expiring`, 'x', { lease: expiring });
      await store.put(`${p}kept`, 'y', { lease: kept });
      await store.put(`${p}revoked`, 'z', { lease: revoked });
      await store.put(`${p}plain`, 'w');
      expect((await store.get(`${p}kept`))?.lease).toBe(kept);
      await store.revokeLease(revoked);
      expect(await store.get(`${p}revoked`)).toBeUndefined();
      const deadline = Date.now() + 8000;
      while ((await store.get(`${p}expiring`)) !== undefined) {
        if (Date.now() > deadline) throw new Error('lease did not expire');
        await store.keepAlive(kept);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await store.get(`${p}kept`))?.value).toBe('y');
      expect((await store.get(`${p}plain`))?.value).toBe('w');
      await waitFor('expiry delete event', () => events.some((e) => e.type === 'delete' && e.key === `${p}expiring`));
      expect(events.filter((e) => e.type === 'delete').map((e) => e.key)).toEqual([`${p}revoked`, `${p}expiring`]);
      // Let `kept` run out too: then keepAlive must say so, and puts on it are refused.
      await waitFor('kept lease expiry', () => events.some((e) => e.type === 'delete' && e.key === `${p}kept`), 8000);
      await expect(store.keepAlive(kept)).rejects.toBeInstanceOf(LeaseNotFoundError);
      await expect(store.put(`${p}late`, 'v', { lease: kept })).rejects.toBeInstanceOf(LeaseNotFoundError);
    } finally {
      watch.close();
    }
  });
});

describe('sqlite shared by several processes', () => {
  const backend = sqliteBackend();
  let store: SqliteKvStore;

  beforeAll(async () => {
    await backend.setup();
    store = backend.open() as SqliteKvStore;
  });

  afterAll(async () => {
    await store.close();
    await backend.teardown();
  });

  test('two processes and this one share the file without lost updates or reordering', async () => {
    const worker = resolve('dist/test/store/sqlite-cas-worker.js');
    expect(existsSync(worker), 'run `npm run build` first').toBe(true);
    const path = store.path;
    const key = `${uniquePrefix('procs')}n`;
    const events: WatchEvent[] = [];
    const watch = await store.watch(key, {}, (e) => events.push(e));
    try {
      const run = promisify(execFile);
      const local = (async () => {
        for (let done = 0; done < 50; ) {
          const cur = await store.get(key);
          const compare = cur === undefined ? { key, absent: true as const } : { key, modRevision: cur.modRevision };
          if ((await store.txn({ compare: [compare], success: [{ type: 'put', key, value: String(Number(cur?.value ?? 0) + 1) }] })).succeeded) done++;
          await new Promise((r) => setImmediate(r));
        }
      })();
      await Promise.all([run(process.execPath, [worker, path, key, '100']), run(process.execPath, [worker, path, key, '100']), local]);
      expect((await store.get(key))?.value).toBe('250');
      await waitFor('250 watch events', () => events.length === 250);
      expect(events.map((e) => e.value)).toEqual(Array.from({ length: 250 }, (_, i) => String(i + 1)));
    } finally {
      watch.close();
    }
  });
});

describe('sqlite housekeeping', () => {
  test('periodic compaction keeps a window of revisions and fails watches from before it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshnet-compact-'));
    const store = new SqliteKvStore(join(dir, 'state.db'), { compactIntervalMs: 30, compactKeepRevisions: 5 });
    try {
      for (let i = 0; i < 20; i++) await store.put('/c/k', String(i));
      const head = await store.currentRevision();
      await new Promise((r) => setTimeout(r, 150)); // a few compaction ticks
      await expect(store.watch('/c/', { fromRevision: 1 }, () => undefined)).rejects.toBeInstanceOf(CompactedError);
      const seen: WatchEvent[] = [];
      const watch = await store.watch('/c/', { fromRevision: head - 4 }, (e) => seen.push(e));
      await waitFor('kept window', () => seen.length === 5);
      watch.close();
      expect(seen.map((e) => e.value)).toEqual(['15', '16', '17', '18', '19']);
      expect((await store.get('/c/k'))?.value).toBe('19');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('openStore', () => {
  test('rejects bad addresses with a clear error', async () => {
    for (const bad of ['', 'mysql://x', 'sqlite:relative.db', 'etcd://', 'etcd://host', 'etcd://h:99999']) {
      await expect(openStore(bad), bad).rejects.toBeInstanceOf(StoreAddressError);
    }
    await expect(openStore('redis://x')).rejects.toThrow(/sqlite:\/path\/to\/state\.db or etcd:\/\/host:port/);
  });

  test('MESHNET_STORE overrides the default address', () => {
    const saved = process.env['MESHNET_STORE'];
    try {
      delete process.env['MESHNET_STORE'];
      expect(defaultStoreAddress()).toBe('sqlite:/var/lib/meshnet/state.db');
      process.env['MESHNET_STORE'] = 'etcd://10.0.0.1:2379,10.0.0.2:2379';
      expect(defaultStoreAddress()).toBe('etcd://10.0.0.1:2379,10.0.0.2:2379');
      expect(parseStoreAddress(defaultStoreAddress())).toEqual({ kind: 'etcd', endpoints: ['10.0.0.1:2379', '10.0.0.2:2379'] });
      expect(parseStoreAddress('sqlite:')).toEqual({ kind: 'sqlite', path: '/var/lib/meshnet/state.db' });
    } finally {
      if (saved === undefined) delete process.env['MESHNET_STORE'];
      else process.env['MESHNET_STORE'] = saved;
    }
  });

  test('opens sqlite and etcd addresses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshnet-open-'));
    try {
      const sqlite = await openStore(`sqlite:${dir}/nested/state.db`);
      expect(sqlite).toBeInstanceOf(SqliteKvStore);
      await sqlite.put('/k', 'v');
      await sqlite.close();
      const etcd = await openStore('etcd://127.0.0.1:1,127.0.0.1:2');
      expect(etcd).toBeInstanceOf(EtcdKvStore);
      await etcd.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
