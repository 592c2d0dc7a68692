import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { Cluster } from './cluster.js';
import * as keys from './keys.js';
import { InvalidSpecError, RecordInvalidError } from './model-errors.js';
import { aliasConflict, aliasProblem, normalizeAliases } from './service-aliases.js';

describe('aliasProblem', () => {
  it('accepts DNS names of lowercase labels, dots allowed, and refuses the rest', () => {
    for (const ok of ['api-v2', 'api.internal', 'a', '0x', `${'a'.repeat(63)}.b`]) expect(aliasProblem(ok)).toBeUndefined();
    for (const bad of ['', 'Api', '-a', 'a-', 'a..b', '.a', 'a.', 'a_b', 'tasks', 'tasks.api', 'a'.repeat(64), `${'abcdefghi.'.repeat(20)}x`]) {
      expect(aliasProblem(bad), bad).toMatch(/^invalid network alias .*: use a DNS name/);
    }
  });
});

describe('aliasConflict', () => {
  const api = { name: 'api', networks: ['front', 'back'], aliases: { front: ['api-v2'] } };
  it('finds a name or alias another service answers on a shared network', () => {
    expect(aliasConflict({ name: 'web', networks: ['front'], aliases: { front: ['api-v2'] } }, [api])).toMatch(/alias "api-v2" on network front is already an alias of service api/);
    expect(aliasConflict({ name: 'web', networks: ['back'], aliases: { back: ['api'] } }, [api])).toMatch(/alias "api" on network back is already the name of service api/);
    // The new service's own name clashes with an alias already given there.
    expect(aliasConflict({ name: 'api-v2', networks: ['front'] }, [api])).toMatch(/its name on network front is already an alias of service api/);
  });

  it('lets the same alias live on different networks, and a service keep its own names', () => {
    expect(aliasConflict({ name: 'web', networks: ['back'], aliases: { back: ['api-v2'] } }, [api])).toBeUndefined();
    expect(aliasConflict({ name: 'api-v2', networks: ['back'] }, [api])).toBeUndefined();
    expect(aliasConflict(api, [api])).toBeUndefined();
  });

  it('normalizeAliases keeps listed networks only, without repeats or the service’s own name', () => {
    expect(normalizeAliases({ name: 'api', networks: ['front'], aliases: { front: ['x', 'x', 'api'], gone: ['y'] } })).toEqual({ front: ['x'] });
    expect(normalizeAliases({ name: 'api', networks: ['front'], aliases: { front: ['api'] } })).toBeUndefined();
  });
});

describe('aliases in the cluster model', () => {
  let dir: string;
  let store: SqliteKvStore;
  let cluster: Cluster;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshnet-aliases-'));
    store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
    cluster = new Cluster(store);
    await cluster.createNetwork({ name: 'front' });
    await cluster.createNetwork({ name: 'back' });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores aliases per network and keeps them through updates; a service without aliases stores no field', async () => {
    const api = await cluster.createService({ name: 'api', networks: ['front', 'back'], aliases: { front: ['api-v2'] }, command: ['x'] });
    expect(api.aliases).toEqual({ front: ['api-v2'] });
    expect((await cluster.updateService('api', { replicas: 3 })).aliases).toEqual({ front: ['api-v2'] });
    expect((await cluster.updateService('api', { aliases: { back: ['old-api'] } })).aliases).toEqual({ back: ['old-api'] });
    const plain = await cluster.createService({ name: 'plain', networks: ['front'], command: ['x'] });
    expect('aliases' in plain).toBe(false);
    expect(JSON.parse((await store.get(keys.serviceKey('plain')))!.value)).not.toHaveProperty('aliases');
  });

  it('refuses, at create and update, a name another service answers on the same network', async () => {
    await cluster.createService({ name: 'api', networks: ['front'], aliases: { front: ['api-v2'] }, command: ['x'] });
    await expect(cluster.createService({ name: 'web', networks: ['front'], aliases: { front: ['api-v2'] }, command: ['x'] })).rejects.toThrow(InvalidSpecError);
    await expect(cluster.createService({ name: 'web', networks: ['front'], aliases: { front: ['api'] }, command: ['x'] })).rejects.toThrow(/already the name of service api/);
    await expect(cluster.createService({ name: 'api-v2', networks: ['front'], command: ['x'] })).rejects.toThrow(/already an alias of service api/);
    await cluster.createService({ name: 'web', networks: ['front', 'back'], aliases: { back: ['api-v2'] }, command: ['x'] });
    await expect(cluster.updateService('web', { aliases: { front: ['api-v2'] } })).rejects.toThrow(/alias "api-v2" on network front is already an alias of service api/);
    expect((await cluster.getService('web'))!.aliases).toEqual({ back: ['api-v2'] });
  });

  it('refuses aliases for a network the service does not list, and invalid aliases, also in stored records', async () => {
    await expect(cluster.createService({ name: 'web', networks: ['front'], aliases: { back: ['x'] }, command: ['x'] })).rejects.toThrow(/not attached to; attach it with --network back/);
    await expect(cluster.createService({ name: 'web', networks: ['front'], aliases: { front: ['Bad_Alias'] }, command: ['x'] })).rejects.toThrow(RecordInvalidError);
    await cluster.createService({ name: 'web', networks: ['front'], command: ['x'] });
    const stored = JSON.parse((await store.get(keys.serviceKey('web')))!.value) as Record<string, unknown>;
    await store.put(keys.serviceKey('web'), JSON.stringify({ ...stored, aliases: { front: ['tasks.web'] } }));
    const snap = await cluster.snapshot();
    expect(snap.services).toEqual([]);
    expect(snap.invalid[0]!.error).toMatch(/aliases\.front\.0: network aliases must be a DNS name/);
  });
});
