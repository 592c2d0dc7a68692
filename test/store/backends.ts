import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdKvStore } from '../../src/store/etcd-store.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { SqliteKvStore } from '../../src/store/sqlite-store.js';
import { EtcdTestServer } from './etcd-server.js';

// The two store backends as test fixtures, so store and model tests run the same cases against both.

/** One store backend under test. */
export interface Backend {
  name: 'sqlite' | 'etcd';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new, independent handle on the same store. */
  open(): KvStore;
  /** Breaks every open connection (sqlite: nothing to break; etcd: kill and restart the server). */
  restartServer(): Promise<void>;
}

/** A SQLite file in a fresh temp dir, with fast polling and lease sweeps. */
export function sqliteBackend(): Backend {
  let dir = '';
  return {
    name: 'sqlite',
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'meshnet-store-'));
    },
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
    open: () => new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 }),
    async restartServer() {},
  };
}

/** A throwaway etcd on loopback (see etcd-server.ts). */
export function etcdBackend(): Backend {
  let server: EtcdTestServer | undefined;
  return {
    name: 'etcd',
    async setup() {
      server = await EtcdTestServer.start();
    },
    async teardown() {
      await server?.stop();
    },
    open: () => new EtcdKvStore({ endpoints: [server!.endpoint] }),
    async restartServer() {
      await server!.restart();
    },
  };
}

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
