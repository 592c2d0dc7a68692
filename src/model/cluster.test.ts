import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { WatchEvent } from '../store/kv-store.js';
import { SqliteKvStore } from '../store/sqlite-store.js';
import { Cluster } from './cluster.js';
import { slotsForNode } from './cluster-placement.js';
import * as keys from './keys.js';
import {
  AlreadyExistsError,
  InvalidSpecError,
  NetworkInUseError,
  NodeLiveError,
  NotFoundError,
  PoolExhaustedError,
  PortConflictError,
  RecordInvalidError,
  SubnetOverlapError,
  TaskReplacedError,
} from './model-errors.js';

let dir: string;
let store: SqliteKvStore;
let cluster: Cluster;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-cluster-'));
  store = new SqliteKvStore(join(dir, 'state.db'), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
  cluster = new Cluster(store, { now: () => new Date('2026-01-01T00:00:00Z') });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ipClaims(network: string): Promise<string[]> {
  const { kvs } = await store.range(keys.networkIpsPrefix(network));
  return kvs.map((kv) => `${kv.key.slice(keys.networkIpsPrefix(network).length)}=${kv.value}`);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('networks', () => {
  test('allocate /24s, VNIs from 4096 and the gateway; ingress gets 10.255.0.0/16', async () => {
    const a = await cluster.createNetwork({ name: 'front' });
    const b = await cluster.createNetwork({ name: 'back' });
    const ingress = await cluster.ensureIngressNetwork();
    expect(a).toEqual({ name: 'front', driver: 'overlay', subnet: '10.0.0.0/24', gateway: '10.0.0.1', vni: 4096, ingress: false, options: {} });
    expect(b).toMatchObject({ subnet: '10.0.1.0/24', gateway: '10.0.1.1', vni: 4097 });
    expect(ingress).toMatchObject({ name: 'ingress', subnet: '10.255.0.0/16', gateway: '10.255.0.1', vni: 4098, ingress: true });
    expect(await cluster.ensureIngressNetwork()).toEqual(ingress);
    expect((await cluster.listNetworks()).map((n) => n.name)).toEqual(['back', 'front', 'ingress']);
    expect(await ipClaims('front')).toEqual(['10.0.0.1=gateway']);
  });

  test('explicit subnets: overlap and duplicates refused, removal releases everything', async () => {
    await cluster.createNetwork({ name: 'big', subnet: '10.1.0.0/16' });
    await expect(cluster.createNetwork({ name: 'inside', subnet: '10.1.2.0/24' })).rejects.toBeInstanceOf(SubnetOverlapError);
    await expect(cluster.createNetwork({ name: 'big' })).rejects.toBeInstanceOf(AlreadyExistsError);
    await expect(cluster.createNetwork({ name: 'x', subnet: '10.255.9.0/24' })).rejects.toThrow(/reserved ingress range/);
    await expect(cluster.createNetwork({ name: 'bad name!' })).rejects.toBeInstanceOf(RecordInvalidError);
    await cluster.removeNetwork('big');
    expect(await cluster.getNetwork('big')).toBeUndefined();
    expect(await ipClaims('big')).toEqual([]);
    const again = await cluster.createNetwork({ name: 'inside', subnet: '10.1.2.0/24' });
    expect(again.vni).toBe(4096);
    await expect(cluster.removeNetwork('nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  test('a network in use cannot be removed', async () => {
    await cluster.createNetwork({ name: 'front' });
    await cluster.createService({ name: 'web', networks: ['front'], command: ['httpd'] });
    await expect(cluster.removeNetwork('front')).rejects.toBeInstanceOf(NetworkInUseError);
    await expect(cluster.removeNetwork('front')).rejects.toThrow(/used by service\(s\) web/);
    await cluster.removeService('web');
    await cluster.removeNetwork('front');
  });
});

describe('encrypted networks and the underlay', () => {
  test('refuses an encrypted network while a node advertises a v6 underlay, and takes it over v4', async () => {
    const v6 = await cluster.registerNode({ id: 'n6', name: 'n6', underlayIp: '2001:db8::6' });
    try {
      await expect(cluster.createNetwork({ name: 'sec', options: { encrypted: '' } })).rejects.toThrow(/encrypted overlays need an IPv4 underlay, and node n6 advertises 2001:db8::6/);
      expect(await cluster.listNetworks()).toEqual([]);
    } finally {
      await v6.close();
    }
    const v4 = await cluster.registerNode({ id: 'n4', name: 'n4', underlayIp: '192.168.0.4' });
    try {
      expect((await cluster.createNetwork({ name: 'sec', options: { encrypted: '' } })).options).toEqual({ encrypted: '' });
    } finally {
      await v4.close();
    }
  });
});

describe('services', () => {
  test('VIPs on each network plus ingress, dynamic and explicit ports', async () => {
    await cluster.createNetwork({ name: 'front' });
    const web = await cluster.createService({
      name: 'web',
      networks: ['front'],
      command: ['httpd'],
      replicas: 3,
      ports: [{ target: 80 }, { published: 8080, target: 8080, protocol: 'udp' }],
    });
    expect(web.vips).toEqual({ front: '10.0.0.2', ingress: '10.255.0.2' });
    expect(web.ports).toEqual([
      { published: 30000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' },
      { published: 8080, target: 8080, protocol: 'udp', mode: 'ingress', policy: 'cluster' },
    ]);
    expect(await cluster.getService('web')).toEqual(web);
    expect(await ipClaims('front')).toEqual(['10.0.0.1=gateway', '10.0.0.2=vip:web']);

    await expect(cluster.createService({ name: 'other', command: ['x'], ports: [{ published: 8080, target: 1, protocol: 'udp' }] })).rejects.toBeInstanceOf(PortConflictError);
    await expect(cluster.createService({ name: 'other', command: ['x'], ports: [{ published: 30000, target: 1 }] })).rejects.toThrow(/30000\/tcp is already used by service "web"/);
    const tcp8080 = await cluster.createService({ name: 'other', command: ['x'], ports: [{ published: 8080, target: 1 }] });
    expect(tcp8080.ports[0]?.published).toBe(8080);
    await expect(cluster.createService({ name: 'web', command: ['x'] })).rejects.toBeInstanceOf(AlreadyExistsError);
  });

  test('invalid specs are refused with clear errors', async () => {
    await cluster.createNetwork({ name: 'front' });
    await expect(cluster.createService({ name: 'd', endpointMode: 'dnsrr', command: ['x'], ports: [{ target: 80 }] })).rejects.toThrow(/dnsrr has no VIP, so it cannot publish in ingress mode/);
    await expect(cluster.createService({ name: 'd', networks: ['nope'], command: ['x'] })).rejects.toThrow(/network "nope" does not exist/);
    await expect(cluster.createService({ name: 'd', networks: ['ingress'], command: ['x'] })).rejects.toBeInstanceOf(InvalidSpecError);
    await expect(cluster.createService({ name: 'd', command: ['x'], ports: [{ published: 81, target: 1 }, { published: 81, target: 2 }] })).rejects.toThrow(/publishes 81\/tcp twice/);
    await expect(cluster.createService({ name: 'd', command: [] })).rejects.toBeInstanceOf(RecordInvalidError);
    const dns = await cluster.createService({ name: 'd', endpointMode: 'dnsrr', networks: ['front'], command: ['x'], ports: [{ target: 80, mode: 'host' }] });
    expect(dns.vips).toEqual({});
  });

  test('policy=local gets a health port; update keeps dynamic ports; remove releases VIPs and ports', async () => {
    const svc = await cluster.createService({ name: 'api', command: ['api'], ports: [{ target: 80, policy: 'local' }] });
    expect(svc.ports[0]?.published).toBe(30000);
    expect(svc.healthPort).toBe(30001);
    const scaled = await cluster.scaleService('api', 5);
    expect(scaled).toEqual({ ...svc, replicas: 5 });
    const moved = await cluster.updateService('api', { ports: [{ target: 80 }, { published: 9000, target: 90 }] });
    expect(moved.ports.map((p) => p.published)).toEqual([30000, 9000]);
    expect(moved.healthPort).toBeUndefined();
    expect((await store.range(keys.PORTS)).kvs.map((kv) => kv.key)).toEqual([keys.portKey('tcp', 30000), keys.portKey('tcp', 9000)]);
    await cluster.removeService('api');
    expect((await store.range(keys.PORTS)).kvs).toEqual([]);
    // The VIP is released into quarantine, not deleted: hosts may still balance to it for a while.
    expect(await ipClaims('ingress')).toEqual(['10.255.0.1=gateway', '10.255.0.2=quarantine:vip:api']);
    await expect(cluster.removeService('api')).rejects.toBeInstanceOf(NotFoundError);
  });

  test('VIP exhaustion is a typed error; a released VIP is reused only after its quarantine', async () => {
    const quick = new Cluster(store, { addressQuarantineSeconds: 0.4 });
    await quick.createNetwork({ name: 'tiny', subnet: '10.9.0.0/29' });
    for (let i = 0; i < 5; i++) await quick.createService({ name: `s${i}`, networks: ['tiny'], command: ['x'] });
    await expect(quick.createService({ name: 's5', networks: ['tiny'], command: ['x'] })).rejects.toBeInstanceOf(PoolExhaustedError);
    await quick.removeService('s0');
    await expect(quick.createService({ name: 's5', networks: ['tiny'], command: ['x'] })).rejects.toBeInstanceOf(PoolExhaustedError);
    await waitFor('the quarantine to end', async () => !(await ipClaims('tiny')).includes('10.9.0.2=quarantine:vip:s0'));
    expect((await quick.createService({ name: 's5', networks: ['tiny'], command: ['x'] })).vips.tiny).toBe('10.9.0.2');
  });
});

describe('nodes and tasks', () => {
  test('node records live under a lease and vanish with it', async () => {
    const reg = await cluster.registerNode({ id: 'host-1', name: 'host-1', underlayIp: '192.168.0.1' }, { ttlSeconds: 0.9 });
    expect((await cluster.listNodes()).map((n) => n.id)).toEqual(['host-1']);
    expect(reg.node.lease).toBe(reg.lease());
    // Three TTLs later the record is still there: the keepalive (every TTL/3) refreshed it.
    await new Promise((r) => setTimeout(r, 2700));
    expect((await cluster.getNode('host-1'))?.underlayIp).toBe('192.168.0.1');
    await reg.close();
    expect(await cluster.listNodes()).toEqual([]);
    const lease = await store.grantLease(0.2);
    await store.put(keys.nodeKey('ghost'), JSON.stringify({ id: 'ghost', name: 'ghost', underlayIp: '192.168.0.9', lease }), { lease });
    expect(await cluster.getNode('ghost')).toBeDefined();
    await new Promise((r) => setTimeout(r, 500));
    expect(await cluster.getNode('ghost')).toBeUndefined();
  });

  test('claim, update, replace and remove tasks with addresses on every attached network', async () => {
    await cluster.createNetwork({ name: 'front' });
    await cluster.createService({ name: 'web', networks: ['front'], command: ['httpd'], replicas: 2, ports: [{ target: 80 }] });
    const n1 = await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' });
    const n2 = await cluster.registerNode({ id: 'n2', name: 'n2', underlayIp: '192.168.0.2' });
    try {
      const t1 = await cluster.claimTask('web', 1, 'n1');
      expect(t1).toMatchObject({ service: 'web', slot: 1, node: 'n1', state: 'new', desiredState: 'running', restarts: 0 });
      expect(t1.addresses).toEqual({ front: { ip: '10.0.0.3', mac: '02:42:0a:00:00:03' }, ingress: { ip: '10.255.0.3', mac: '02:42:0a:ff:00:03' } });
      expect(t1.sandbox).toBe(`/run/meshnet/netns/t-${t1.id.slice(0, 12)}`);
      expect(await cluster.claimTask('web', 1, 'n1')).toEqual(t1);

      const running = await cluster.updateTaskState('web', 1, t1.id, { state: 'running', message: 'up' });
      expect(running).toMatchObject({ state: 'running', message: 'up' });
      expect((await cluster.updateTaskState('web', 1, t1.id, { restarts: 1 })).message).toBeUndefined();

      const t1b = await cluster.claimTask('web', 1, 'n2');
      expect(t1b.id).not.toBe(t1.id);
      expect(t1b.node).toBe('n2');
      expect(await ipClaims('front')).toEqual(['10.0.0.1=gateway', '10.0.0.2=vip:web', `10.0.0.3=quarantine:task:${t1.id}`, `10.0.0.4=task:${t1b.id}`]);
      await expect(cluster.updateTaskState('web', 1, t1.id, { state: 'failed' })).rejects.toBeInstanceOf(TaskReplacedError);

      await expect(cluster.claimTask('web', 3, 'n1')).rejects.toThrow(/slot 3 is outside 1..2/);
      await expect(cluster.claimTask('web', 1, 'n9')).rejects.toThrow(/node "n9" does not exist/);
      const t2 = await cluster.claimTask('web', 2, 'n1');
      expect(t2.addresses['front']?.ip).toBe('10.0.0.5');
      expect((await cluster.listTasks({ node: 'n1' })).map((t) => t.slot)).toEqual([2]);

      // Scaling down leaves a live node's surplus task to its agent, which drains it (weight 0) first...
      await cluster.scaleService('web', 1);
      expect((await cluster.listTasks()).map((t) => `${t.service}.${t.slot}@${t.node}`)).toEqual(['web.1@n2', 'web.2@n1']);
      // ...but a surplus task whose node is gone has no agent to drain it: it is removed, its address freed.
      await n1.close();
      await cluster.scaleService('web', 1);
      expect((await cluster.listTasks()).map((t) => `${t.service}.${t.slot}@${t.node}`)).toEqual(['web.1@n2']);
      expect(await cluster.removeTask('web', 1, 'not-the-id')).toBe(false);
      expect(await cluster.removeTask('web', 1)).toBe(true);
      expect(await ipClaims('front')).toEqual([
        '10.0.0.1=gateway',
        '10.0.0.2=vip:web',
        `10.0.0.3=quarantine:task:${t1.id}`,
        `10.0.0.4=quarantine:task:${t1b.id}`,
        `10.0.0.5=quarantine:task:${t2.id}`,
      ]);
    } finally {
      await n1.close();
      await n2.close();
    }
  });

  test('removing a service removes its tasks and quarantines their addresses', async () => {
    await cluster.createNetwork({ name: 'front' });
    await cluster.createService({ name: 'web', networks: ['front'], command: ['httpd'], replicas: 2 });
    const n1 = await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' });
    try {
      const a = await cluster.claimTask('web', 1, 'n1');
      const b = await cluster.claimTask('web', 2, 'n1');
      await cluster.removeService('web');
      expect(await cluster.listTasks()).toEqual([]);
      expect(await ipClaims('front')).toEqual(['10.0.0.1=gateway', '10.0.0.2=quarantine:vip:web', `10.0.0.3=quarantine:task:${a.id}`, `10.0.0.4=quarantine:task:${b.id}`]);
      // Removing the network keeps the quarantined claims: they end with their lease, not with the network.
      await cluster.removeNetwork('front');
      expect(await ipClaims('front')).toEqual(['10.0.0.2=quarantine:vip:web', `10.0.0.3=quarantine:task:${a.id}`, `10.0.0.4=quarantine:task:${b.id}`]);
    } finally {
      await n1.close();
    }
  });

  test('snapshot is one consistent view; watch fires on changes; invalid records are reported', async () => {
    const events: WatchEvent[] = [];
    const watch = await cluster.watch((e) => events.push(e));
    try {
      await cluster.createNetwork({ name: 'front' });
      await cluster.createService({ name: 'web', networks: ['front'], command: ['httpd'] });
      await store.put(`${keys.SERVICES}broken`, '{"name":"broken"}');
      const snap = await cluster.snapshot();
      expect(snap.networks.map((n) => n.name)).toEqual(['front']);
      expect(snap.services.map((s) => s.name)).toEqual(['web']);
      expect(snap.invalid).toHaveLength(1);
      expect(snap.invalid[0]?.key).toBe(`${keys.SERVICES}broken`);
      expect(snap.revision).toBe(await store.currentRevision());
      const deadline = Date.now() + 2000;
      while (!events.some((e) => e.key === keys.serviceKey('web')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(events.some((e) => e.key === keys.networkKey('front'))).toBe(true);
      expect(events.some((e) => e.key === keys.serviceKey('web'))).toBe(true);
      await expect(cluster.listServices()).rejects.toBeInstanceOf(RecordInvalidError);
    } finally {
      watch.close();
    }
  });

  test('a dead node\'s slots move to live nodes, which claim them and quarantine the old addresses', async () => {
    await cluster.createNetwork({ name: 'front' });
    await cluster.createService({ name: 'web', networks: ['front'], command: ['httpd'], replicas: 3 });
    const stable = [
      await cluster.registerNode({ id: 'a', name: 'a', underlayIp: '192.168.0.1' }),
      await cluster.registerNode({ id: 'b', name: 'b', underlayIp: '192.168.0.2' }),
    ];
    // Node c's agent "dies": its record sits on a short lease nobody refreshes.
    const lease = await store.grantLease(0.4);
    await store.put(keys.nodeKey('c'), JSON.stringify({ id: 'c', name: 'c', underlayIp: '192.168.0.3', lease }), { lease });
    try {
      let snap = await cluster.snapshot();
      for (const node of ['a', 'b', 'c']) for (const ref of slotsForNode(snap, node)) await cluster.claimTask(ref.service, ref.slot, node);
      snap = await cluster.snapshot();
      expect(new Set(snap.tasks.map((t) => t.node))).toEqual(new Set(['a', 'b', 'c']));
      const onC = snap.tasks.find((t) => t.node === 'c')!;

      await new Promise((r) => setTimeout(r, 800));
      snap = await cluster.snapshot();
      expect(snap.nodes.map((n) => n.id)).toEqual(['a', 'b']);
      const before = new Map(snap.tasks.map((t) => [t.slot, t.node]));
      const claims = [...slotsForNode(snap, 'a').map((r) => ({ ...r, node: 'a' })), ...slotsForNode(snap, 'b').map((r) => ({ ...r, node: 'b' }))];
      expect(claims.map((c) => c.slot).sort()).toEqual([1, 2, 3]);
      for (const c of claims) await cluster.claimTask(c.service, c.slot, c.node);
      const after = await cluster.listTasks();
      expect(after.find((t) => t.slot === onC.slot)?.node).not.toBe('c');
      // Only the dead node's slot moved.
      for (const t of after) if (t.slot !== onC.slot) expect(t.node).toBe(before.get(t.slot));
      expect(await ipClaims('front')).toContain(`${onC.addresses['front']!.ip}=quarantine:task:${onC.id}`);
      expect((await ipClaims('front')).filter((c) => c.includes('=task:'))).toHaveLength(3);
    } finally {
      for (const r of stable) await r.close();
    }
  });
});

describe('address quarantine', () => {
  test('a released task address is not handed out while quarantined, and is after', async () => {
    const quick = new Cluster(store, { addressQuarantineSeconds: 0.5 });
    await quick.createNetwork({ name: 'front' });
    await quick.createService({ name: 'web', networks: ['front'], command: ['httpd'], replicas: 1 });
    await quick.createService({ name: 'ng', networks: ['front'], command: ['nginx'], replicas: 1 });
    const n1 = await quick.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' });
    try {
      const old = await quick.claimTask('web', 1, 'n1');
      const released = old.addresses['front']!.ip;
      expect(await quick.removeTask('web', 1, old.id)).toBe(true);
      const other = await quick.claimTask('ng', 1, 'n1');
      expect(other.addresses['front']!.ip).not.toBe(released);
      expect(await ipClaims('front')).toContain(`${released}=quarantine:task:${old.id}`);
      await waitFor('the quarantine to end', async () => !(await ipClaims('front')).some((c) => c.startsWith(`${released}=`)));
      const next = await quick.claimTask('web', 1, 'n1');
      expect(next.addresses['front']!.ip).toBe(released);
    } finally {
      await n1.close();
    }
  });

  test('a period of 0 releases at once; a negative period is refused', async () => {
    expect(() => new Cluster(store, { addressQuarantineSeconds: -1 })).toThrow(InvalidSpecError);
    const at0 = new Cluster(store, { addressQuarantineSeconds: 0 });
    await at0.createNetwork({ name: 'front' });
    await at0.createService({ name: 'web', networks: ['front'], command: ['httpd'] });
    const n1 = await at0.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' });
    try {
      const t = await at0.claimTask('web', 1, 'n1');
      await at0.removeTask('web', 1);
      expect(await ipClaims('front')).toEqual(['10.0.0.1=gateway', '10.0.0.2=vip:web']);
      expect((await at0.claimTask('web', 1, 'n1')).addresses['front']!.ip).toBe(t.addresses['front']!.ip);
    } finally {
      await n1.close();
    }
  });
});

describe('records from a newer meshnet', () => {
  test('unknown fields are read, not reported, and kept by every read-modify-write', async () => {
    await cluster.createNetwork({ name: 'front' });
    const created = await cluster.createService({ name: 'web', networks: ['front'], command: ['httpd'], replicas: 2, ports: [{ target: 80 }] });
    const newer = { ...created, placement: { maxPerNode: 1 }, ports: created.ports.map((p) => ({ ...p, appProtocol: 'http' })), lb: { ...created.lb, weights: 'even' } };
    await store.put(keys.serviceKey('web'), JSON.stringify(newer));
    const n1 = await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' });
    try {
      const snap = await cluster.snapshot();
      expect(snap.invalid).toEqual([]);
      expect(snap.services).toEqual([newer]);

      const task = await cluster.claimTask('web', 1, 'n1');
      await store.put(keys.taskKey('web', 1), JSON.stringify({ ...task, cpus: 2 }));
      const updated = await cluster.updateTaskState('web', 1, task.id, { state: 'running' });
      expect(updated).toMatchObject({ state: 'running', cpus: 2 });
      expect(JSON.parse((await store.get(keys.taskKey('web', 1)))!.value)).toMatchObject({ state: 'running', cpus: 2 });

      const scaled = await cluster.scaleService('web', 3);
      expect(scaled).toEqual({ ...newer, replicas: 3 });
      expect(await cluster.getService('web')).toEqual({ ...newer, replicas: 3 });
    } finally {
      await n1.close();
    }
  });

  test('a really invalid record is reported with its key, kind and reason, and shown by inspectService', async () => {
    await cluster.createService({ name: 'web', command: ['httpd'] });
    const n1 = await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.168.0.1' });
    try {
      const task = await cluster.claimTask('web', 1, 'n1');
      await store.put(keys.taskKey('web', 1), JSON.stringify({ ...task, addresses: { ingress: { ip: '10.255.0.300', mac: '02:42:0a:ff:00:03' } } }));
      await store.put(keys.serviceKey('api'), JSON.stringify({ name: 'api', replicas: 'two' }));
      const snap = await cluster.snapshot();
      expect(snap.invalid.map((i) => [i.key, i.kind])).toEqual([
        [keys.serviceKey('api'), 'service'],
        [keys.taskKey('web', 1), 'task'],
      ]);
      expect(snap.invalid[1]?.error).toMatch(/addresses\.ingress\.ip: must be a dotted-quad IPv4 address/);
      expect(snap.tasks).toEqual([]);

      const web = await cluster.inspectService('web');
      expect(web?.service?.name).toBe('web');
      expect(web?.tasks).toEqual([]);
      expect(web?.invalid.map((i) => i.key)).toEqual([keys.taskKey('web', 1)]);
      const api = await cluster.inspectService('api');
      expect(api?.service).toBeUndefined();
      expect(api?.invalid[0]?.error).toMatch(/invalid service at \/meshnet\/services\/api: .*replicas/);
      expect(await cluster.inspectService('ghost')).toBeUndefined();
    } finally {
      await n1.close();
    }
  });
});

describe('node lease takeover', () => {
  const spec = { id: 'n1', name: 'n1', underlayIp: '192.168.0.1' };

  test('a restarted agent resumes a live lease: no key changes revision, keys under the lease outlive the old TTL', async () => {
    const first = await cluster.registerNode(spec, { ttlSeconds: 0.9 });
    expect(first.resumed).toBe(false);
    const lease = first.lease();
    await store.put('/meshnet/ingress-endpoints/n1', '{"node":"n1"}', { lease });
    const before = (await store.get(keys.nodeKey('n1')))!;
    first.stop(); // a graceful restart: the old agent stops refreshing, the lease still runs
    const second = await cluster.registerNode(spec, { ttlSeconds: 0.9, resumeLease: lease });
    try {
      expect(second.resumed).toBe(true);
      expect(second.lease()).toBe(lease);
      expect(second.node).toEqual(JSON.parse(before.value));
      // Several TTLs later nothing was re-created: same revisions, still on the old lease.
      await new Promise((r) => setTimeout(r, 2000));
      expect((await store.get(keys.nodeKey('n1')))?.modRevision).toBe(before.modRevision);
      expect((await store.get('/meshnet/ingress-endpoints/n1'))?.lease).toBe(lease);
    } finally {
      await second.close();
    }
    expect(await store.get('/meshnet/ingress-endpoints/n1')).toBeUndefined();
  });

  test('a lease that is gone, or that holds another registration, is not taken over', async () => {
    const gone = await cluster.registerNode(spec);
    const goneLease = gone.lease();
    await gone.close();
    const afterGone = await cluster.registerNode(spec, { resumeLease: goneLease });
    expect(afterGone.resumed).toBe(false);
    expect(afterGone.lease()).not.toBe(goneLease);
    afterGone.stop();

    // The old lease is alive, but the node now lives at another underlay address: register afresh.
    const moved = await cluster.registerNode({ ...spec, underlayIp: '192.168.0.9' }, { resumeLease: afterGone.lease() });
    try {
      expect(moved.resumed).toBe(false);
      expect(moved.lease()).not.toBe(afterGone.lease());
      expect((await cluster.getNode('n1'))?.underlayIp).toBe('192.168.0.9');
    } finally {
      await moved.close();
      await store.revokeLease(afterGone.lease());
    }
  });

  test('a renamed node resumes its lease and rewrites only its record', async () => {
    const first = await cluster.registerNode(spec);
    first.stop();
    const renamed = await cluster.registerNode({ ...spec, name: 'n1.example', labels: { zone: 'a' } }, { resumeLease: first.lease() });
    try {
      expect(renamed.resumed).toBe(true);
      expect(await cluster.getNode('n1')).toEqual({ ...spec, name: 'n1.example', labels: { zone: 'a' }, lease: first.lease() });
    } finally {
      await renamed.close();
    }
  });

  test('a lease lost under a running agent is replaced and reported to onLeaseReplaced', async () => {
    const replaced: [string, string][] = [];
    const reg = await cluster.registerNode(spec, { ttlSeconds: 0.6, onLeaseReplaced: (lease, previous) => replaced.push([lease, previous]) });
    try {
      const old = reg.lease();
      await store.revokeLease(old); // as if the agent had stalled past its TTL
      await waitFor('the lease to be replaced', async () => replaced.length > 0);
      expect(replaced).toEqual([[reg.lease(), old]]);
      expect((await cluster.getNode('n1'))?.lease).toBe(reg.lease());
    } finally {
      await reg.close();
    }
  });
});

describe('node lifecycle', () => {
  const reg = (id: string, ip: string, ttlSeconds = 10) => cluster.registerNode({ id, name: id, underlayIp: ip }, { ttlSeconds });

  test('a node that dies stays listed as down with its address, availability and labels', async () => {
    const a = await reg('host-a', '192.168.0.1', 0.6);
    const b = await reg('host-b', '192.168.0.2');
    try {
      await cluster.updateNode('host-a', { availability: 'drain', labelAdd: { zone: 'west', 'com.example/tier': 'db' } });
      a.stop();
      await waitFor('host-a to be down', async () => (await cluster.getNode('host-a')) === undefined);
      expect(await cluster.nodeViews()).toEqual([
        { id: 'host-a', name: 'host-a', address: '192.168.0.1', status: 'down', availability: 'drain', labels: { zone: 'west', 'com.example/tier': 'db' } },
        { id: 'host-b', name: 'host-b', address: '192.168.0.2', status: 'ready', availability: 'active', labels: {}, lease: b.lease() },
      ]);
      // Placement still sees live nodes only; the persistent records ride beside them.
      const snap = await cluster.snapshot();
      expect(snap.nodes.map((n) => n.id)).toEqual(['host-b']);
      expect(snap.nodeInfo.map((i) => `${i.id}=${i.availability}`)).toEqual(['host-a=drain', 'host-b=active']);
    } finally {
      await b.close();
    }
  });

  test('registering again keeps what the operator set, and takes a changed address', async () => {
    const first = await reg('host-a', '192.168.0.1');
    await cluster.updateNode('host-a', { availability: 'pause', labelAdd: { zone: 'west' } });
    await first.close();
    const again = await reg('host-a', '192.168.0.7');
    try {
      expect(await cluster.nodeView('host-a')).toMatchObject({ status: 'ready', address: '192.168.0.7', availability: 'pause', labels: { zone: 'west' } });
      const [info] = await cluster.listNodeInfo();
      expect(info).toMatchObject({ underlayIp: '192.168.0.7', createdAt: '2026-01-01T00:00:00.000Z' });
    } finally {
      await again.close();
    }
  });

  test('node update validates its input and says what is wrong', async () => {
    const a = await reg('host-a', '192.168.0.1');
    try {
      await expect(cluster.updateNode('host-a', { availability: 'off' as 'drain' })).rejects.toThrow(/availability must be one of active, pause, drain/);
      await expect(cluster.updateNode('host-a', { labelAdd: { 'bad key': 'x' } })).rejects.toThrow(/label keys must be letters, digits/);
      await expect(cluster.updateNode('host-a', { labelRm: ['zone'] })).rejects.toThrow(/has no label "zone"/);
      await expect(cluster.updateNode('host-a', { labelAdd: { zone: 'a' }, labelRm: ['zone'] })).rejects.toThrow(/both added and removed/);
      await expect(cluster.updateNode('host-z', { availability: 'drain' })).rejects.toBeInstanceOf(NotFoundError);
      await expect(cluster.updateNode('Host_A', { availability: 'drain' })).rejects.toThrow(/invalid node name "Host_A"/);
      await cluster.updateNode('host-a', { labelAdd: { zone: 'a', rack: '1' } });
      expect((await cluster.updateNode('host-a', { labelRm: ['rack'] })).labels).toEqual({ zone: 'a' });
    } finally {
      await a.close();
    }
  });

  test('a live node registered by an older meshnet (no persistent record) can be updated', async () => {
    const lease = await store.grantLease(10);
    await store.put(keys.nodeKey('old'), JSON.stringify({ id: 'old', name: 'old', underlayIp: '192.168.0.5', lease }), { lease });
    expect(await cluster.nodeView('old')).toMatchObject({ status: 'ready', availability: 'active' });
    await cluster.updateNode('old', { availability: 'drain' });
    expect(await cluster.nodeView('old')).toMatchObject({ status: 'ready', availability: 'drain', address: '192.168.0.5' });
    await store.revokeLease(lease);
  });

  test('node rm refuses a live node without force; removes a down node, its ingress endpoint and address claim, and its tasks', async () => {
    const quick = new Cluster(store, { addressQuarantineSeconds: 0.3 });
    await quick.createNetwork({ name: 'front' });
    await quick.createService({ name: 'web', networks: ['front'], command: ['httpd'], replicas: 1 });
    const a = await reg('host-a', '192.168.0.1', 0.6);
    const task = await quick.claimTask('web', 1, 'host-a');
    await store.put(keys.ingressEndpointKey('host-a'), JSON.stringify({ node: 'host-a', ip: '10.255.0.9', mac: '02:42:0a:ff:00:09' }));
    await store.put(keys.ipKey('ingress', '10.255.0.9'), 'node:host-a');
    await expect(quick.removeNode('host-a')).rejects.toBeInstanceOf(NodeLiveError);
    await expect(quick.removeNode('host-a')).rejects.toThrow(/is live .*--force/);
    a.stop();
    await waitFor('host-a to be down', async () => (await cluster.getNode('host-a')) === undefined);
    expect(await quick.removeNode('host-a')).toEqual({ id: 'host-a', wasLive: false, removedTasks: 1, ingressAddress: '10.255.0.9' });
    expect(await cluster.nodeViews()).toEqual([]);
    expect(await store.get(keys.ingressEndpointKey('host-a'))).toBeUndefined();
    expect((await store.get(keys.ipKey('ingress', '10.255.0.9')))?.value).toBe('quarantine:node:host-a');
    expect(await ipClaims('front')).toContain(`10.0.0.3=quarantine:task:${task.id}`);
    await waitFor('the quarantine to end', async () => (await store.get(keys.ipKey('ingress', '10.255.0.9'))) === undefined);
    await expect(quick.removeNode('host-a')).rejects.toBeInstanceOf(NotFoundError);
  });

  test('node rm --force removes a live node at once by revoking its lease', async () => {
    const a = await reg('host-a', '192.168.0.1');
    await store.put('/meshnet/node-status/host-a', '{}', { lease: a.lease() });
    expect(await cluster.removeNode('host-a', { force: true })).toMatchObject({ wasLive: true, removedTasks: 0 });
    expect(await cluster.nodeViews()).toEqual([]);
    expect((await store.range('/meshnet/node-status/')).kvs).toEqual([]);
    a.stop();
  });
});

