import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Cluster } from '../../src/model/cluster.js';
import * as keys from '../../src/model/keys.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { etcdBackend, sqliteBackend, waitFor } from './backends.js';

// Model behaviours that rest on store leases, on both backends: address quarantine ends by lease expiry, and a
// restarted agent takes over its node's live lease.

describe.each([sqliteBackend(), etcdBackend()])('cluster leases on $name', (backend) => {
  let store: KvStore;

  beforeAll(async () => {
    await backend.setup();
    store = backend.open();
  });

  afterAll(async () => {
    await store?.close();
    await backend.teardown();
  });

  test('a released address stays taken while quarantined and is handed out after', async () => {
    const cluster = new Cluster(store, { addressQuarantineSeconds: 1 });
    await cluster.createNetwork({ name: 'q' });
    await cluster.createService({ name: 'a', networks: ['q'], command: ['x'] });
    await cluster.createService({ name: 'b', networks: ['q'], command: ['x'] });
    const node = await cluster.registerNode({ id: 'qn', name: 'qn', underlayIp: '192.168.7.1' }, { ttlSeconds: 5 });
    try {
      const first = await cluster.claimTask('a', 1, 'qn');
      const ip = first.addresses['q']!.ip;
      await cluster.removeTask('a', 1, first.id);
      const claim = await store.get(keys.ipKey('q', ip));
      expect(claim?.value).toBe(`quarantine:task:${first.id}`);
      expect(claim?.lease).toBeDefined();
      expect((await cluster.claimTask('b', 1, 'qn')).addresses['q']!.ip).not.toBe(ip);
      await waitFor('the quarantine lease to end', async () => (await store.get(keys.ipKey('q', ip))) === undefined, 10_000);
      expect((await cluster.claimTask('a', 1, 'qn')).addresses['q']!.ip).toBe(ip);
    } finally {
      await node.close();
    }
  });

  test('a restarted agent keeps its node record and lease past the old TTL', async () => {
    const cluster = new Cluster(store);
    const spec = { id: 'rn', name: 'rn', underlayIp: '192.168.7.2' };
    const old = await cluster.registerNode(spec, { ttlSeconds: 1 });
    const before = (await store.get(keys.nodeKey('rn')))!;
    old.stop();
    const restarted = await cluster.registerNode(spec, { ttlSeconds: 1, resumeLease: old.lease() });
    try {
      expect(restarted.resumed).toBe(true);
      await new Promise((r) => setTimeout(r, 2500));
      const after = await store.get(keys.nodeKey('rn'));
      expect(after?.modRevision).toBe(before.modRevision);
      expect(after?.lease).toBe(old.lease());
    } finally {
      await restarted.close();
    }
    expect(await store.get(keys.nodeKey('rn'))).toBeUndefined();
  });
});
