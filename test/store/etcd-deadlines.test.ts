import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Cluster } from '../../src/model/cluster.js';
import { EtcdKvStore } from '../../src/store/etcd-store.js';
import { StoreTimeoutError, StoreUnavailableError } from '../../src/store/store-errors.js';
import { isTransientStoreError } from '../../src/agent/start-retry.js';
import { waitFor } from './backends.js';
import { EtcdTestServer, freePort } from './etcd-server.js';

// A frozen etcd (SIGSTOP) keeps its connections open and answers nothing: the case a deadline exists for.
// Every call must fail with StoreTimeoutError instead of hanging, and work again once etcd runs again.

describe('etcd calls under a hung server', () => {
  let server: EtcdTestServer;
  let store: EtcdKvStore;

  beforeAll(async () => {
    server = await EtcdTestServer.start();
    store = new EtcdKvStore({ endpoints: [server.endpoint], callTimeoutMs: 400 });
  });

  afterAll(async () => {
    server?.resume();
    await store?.close();
    await server?.stop();
  });

  test('every call, keepAlive and watch set-up included, fails with StoreTimeoutError, then works again', async () => {
    const lease = await store.grantLease(30);
    await store.put('/deadline/k', 'v', { lease });
    server.pause();
    try {
      const calls: [string, () => Promise<unknown>][] = [
        ['get', () => store.get('/deadline/k')],
        ['put', () => store.put('/deadline/k', 'w')],
        ['delete', () => store.delete('/deadline/other')],
        ['range', () => store.range('/deadline/')],
        ['txn', () => store.txn({ compare: [{ key: '/deadline/k', absent: true }], success: [] })],
        ['grantLease', () => store.grantLease(5)],
        ['keepAlive', () => store.keepAlive(lease)],
        ['revokeLease', () => store.revokeLease('12345')],
        ['currentRevision', () => store.currentRevision()],
        ['watch', () => store.watch('/deadline/', {}, () => undefined)],
      ];
      for (const [name, call] of calls) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, name).toBeInstanceOf(StoreTimeoutError);
        expect((err as StoreTimeoutError).code).toBe('STORE_TIMEOUT');
        expect((err as Error).message).toMatch(/got no answer within 400 ms; check that etcd is reachable/);
      }
    } finally {
      server.resume();
    }
    // Answering at all is the point: the timed-out put may still land once etcd runs again (a call past its
    // deadline "may or may not have taken effect"), so the value may be 'v' or 'w'.
    await waitFor('etcd to answer again', async () => ['v', 'w'].includes((await store.get('/deadline/k').catch(() => undefined))?.value ?? ''), 15_000);
    await store.keepAlive(lease);
  });

  test('a node keepalive against a hung etcd reports the timeout and keeps trying', async () => {
    const cluster = new Cluster(store);
    const errors: Error[] = [];
    const reg = await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' }, { ttlSeconds: 3, onKeepAliveError: (e) => errors.push(e) });
    try {
      server.pause();
      try {
        await waitFor('a keepalive timeout', () => errors.length > 0, 10_000);
      } finally {
        server.resume();
      }
      expect(errors[0]).toBeInstanceOf(StoreTimeoutError);
      // The keepalive goes on after the timeout: the node stays registered on the same lease.
      const lease = reg.lease();
      await waitFor('the node record', async () => (await cluster.getNode('n1').catch(() => undefined))?.lease === lease, 15_000);
    } finally {
      await reg.close();
    }
  });
});

describe('etcd calls when no etcd listens', () => {
  test('fail with StoreUnavailableError, which an agent starting meanwhile waits through instead of exiting', async () => {
    const store = new EtcdKvStore({ endpoints: [`127.0.0.1:${await freePort()}`], callTimeoutMs: 2000 });
    try {
      const err = await store.get('/down/k').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toMatch(/no etcd endpoint could be reached .*check that etcd runs/);
      expect(isTransientStoreError(err)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
