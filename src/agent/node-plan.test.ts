import { describe, expect, it } from 'vitest';
import { assignGwAddresses, desiredNode, gwHostIfName, PlanMemo, type NodeFacts } from './node-plan.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';

const settings = settingsFixture;
const endpoints = endpointsFixture;
const facts = (over: Partial<NodeFacts> = {}): NodeFacts => ({ gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpoints, now: Date.parse('2026-11-25T10:00:01.000Z'), ...over });

describe('desiredNode', () => {
  const plan = desiredNode(snapshotFixture(), settings('host-a'), facts());

  it('wires the local task: ingress first (eth0), its network next, the gwbridge leg last', () => {
    expect(plan.tasks).toHaveLength(1);
    const t = plan.tasks[0]!;
    expect(t.name).toBe('web.1');
    expect(t.interfaces.map((i) => `${i.ifname}=${i.network}`)).toEqual(['eth0=ingress', 'eth1=appnet']);
    expect(t.gw).toMatchObject({ ifname: 'eth2', ip: '172.18.0.3', hostIf: gwHostIfName('task00000001') });
    expect(plan.gwLegs.map((l) => l.hostIf)).toEqual(['mn-sbox', gwHostIfName('task00000001')]);
    expect(plan.namespaces).toEqual(['t-task00000001', 'ingress_sbox']);
  });

  it('computes a task namespace path from the task id, never from the record', () => {
    const snap = snapshotFixture();
    snap.tasks[0]!.sandbox = '/run/meshnet/netns/../../../proc/1/ns/net';
    const p = desiredNode(snap, settings('host-a'), facts());
    expect(p.tasks[0]!.sandbox).toBe('/run/host-a/netns/t-task00000001');
    expect(p.processes[0]!.netnsPath).toBe('/run/host-a/netns/t-task00000001');
  });

  it('builds one overlay per network in use, with remote tasks and sandboxes as peers', () => {
    const ingress = plan.overlays.find((o) => o.network.name === 'ingress')!;
    expect(ingress.local.map((l) => l.ip).sort()).toEqual(['10.255.0.11', '10.255.0.3']);
    expect(ingress.remote.map((r) => `${r.ip}@${r.vtep}`).sort()).toEqual(['10.255.0.12@192.0.2.2', '10.255.0.13@192.0.2.3', '10.255.0.4@192.0.2.2', '10.255.0.5@192.0.2.3']);
    const appnet = plan.overlays.find((o) => o.network.name === 'appnet')!;
    expect(appnet.remote).toHaveLength(2);
    expect(appnet.underlayMtu).toBe(1500);
  });

  it("drops a dead node's endpoints, peers and backends", () => {
    const snap = snapshotFixture();
    snap.nodes = snap.nodes.filter((n) => n.id !== 'host-c');
    const p = desiredNode(snap, settings('host-a'), facts());
    for (const o of p.overlays) expect(o.remote.some((r) => r.vtep === '192.0.2.3')).toBe(false);
    const sbox = p.lbTables.find((t) => t.netns.endsWith('/ingress_sbox'))!;
    expect(sbox.table.services[0]!.backends.map((b) => b.address)).toEqual(['10.255.0.11', '10.255.0.12']);
  });

  it("keeps a node in its grace as an overlay peer, but not as a backend", () => {
    const snap = snapshotFixture();
    const hostC = snap.nodes.find((n) => n.id === 'host-c')!;
    snap.nodes = snap.nodes.filter((n) => n.id !== 'host-c');
    const p = desiredNode(snap, settings('host-a'), facts({ graceNodes: [hostC] }));
    const ingress = p.overlays.find((o) => o.network.name === 'ingress')!;
    expect(ingress.remote.filter((r) => r.vtep === '192.0.2.3').map((r) => r.ip).sort()).toEqual(['10.255.0.13', '10.255.0.5']);
    const sbox = p.lbTables.find((t) => t.netns.endsWith('/ingress_sbox'))!;
    expect(sbox.table.services[0]!.backends.map((b) => b.address)).toEqual(['10.255.0.11', '10.255.0.12']);
  });

  it("keeps its own tasks when its own node record is missing (a lapsed lease is not a dead node)", () => {
    const snap = snapshotFixture();
    snap.nodes = snap.nodes.filter((n) => n.id !== 'host-a');
    const p = desiredNode(snap, settings('host-a'), facts());
    expect(p.processes.map((x) => x.taskId)).toEqual(['task00000001']);
    expect(p.lbTables[0]!.table.services[0]!.backends.map((b) => b.address)).toContain('10.0.1.11');
  });

  it('gives the task a DNS view of its own network only (the ingress network has no names)', () => {
    expect(plan.nameViews).toHaveLength(1);
    expect(plan.nameViews[0]!.view.networks.map((n) => n.name)).toEqual(['appnet']);
  });

  it("balances published ports in the sandbox over every live task, with the service's scheduler", () => {
    const sbox = plan.lbTables.find((t) => t.netns === '/run/host-a/netns/ingress_sbox')!;
    expect(sbox.table.services).toHaveLength(1);
    expect(sbox.table.services[0]!.frontend).toMatchObject({ kind: 'fwmark', port: 8000, address: '172.18.0.2' });
    expect(sbox.table.services[0]!.backends.map((b) => b.address)).toEqual(['10.255.0.11', '10.255.0.12', '10.255.0.13']);
    expect(plan.hostRules!.ingressPorts).toEqual([{ protocol: 'tcp', port: 8000 }]);
    expect(plan.taskRules).toEqual([
      { taskId: 'task00000001', netns: '/run/host-a/netns/t-task00000001', redirects: [{ protocol: 'tcp', address: '10.255.0.11', port: 8000, targetPort: 80 }], returnRoute: null },
    ]);
  });

  it('balances published ports with the service scheduler and affinity, as its VIPs', () => {
    const snap = snapshotFixture();
    snap.services[0]!.lb = { scheduler: 'sh', affinity: { timeoutSeconds: 60 } };
    const sbox = desiredNode(snap, settings('host-a'), facts()).lbTables.find((t) => t.netns.endsWith('/ingress_sbox'))!;
    expect(sbox.table.services[0]).toMatchObject({ scheduler: 'sh', persistenceSeconds: 60 });
    const vip = desiredNode(snap, settings('host-a'), facts()).lbTables[0]!.table.services[0]!;
    expect(vip).toMatchObject({ scheduler: 'sh', persistenceSeconds: 60 });
  });

  it('starts the processes of running tasks, not of draining or attached ones', () => {
    expect(plan.processes).toEqual([
      expect.objectContaining({ taskId: 'task00000001', command: ['/bin/server'], hostname: 'web-1', env: expect.objectContaining({ MESHNET_TASK_NAME: 'web.1', MESHNET_NODE: 'host-a' }) }),
    ]);
    const snap = snapshotFixture();
    snap.tasks[0]!.desiredState = 'shutdown';
    expect(desiredNode(snap, settings('host-a'), facts()).processes).toEqual([]);
  });

  it('leaves an attached task whose namespace is unusable unwired', () => {
    const snap = snapshotFixture();
    snap.tasks[0]!.external = true;
    const p = desiredNode(snap, settings('host-a'), facts({ unusableExternal: new Set(['task00000001']) }));
    expect(p.tasks).toEqual([]);
  });

  it('balances the VIP over running tasks; draining ones keep weight 0 until the drain deadline', () => {
    const snap = snapshotFixture();
    snap.tasks[1]!.desiredState = 'shutdown';
    snap.tasks[2]!.state = 'starting';
    const before = desiredNode(snap, settings('host-a'), facts());
    const vip = before.lbTables[0]!.table.services;
    expect(vip.map((s) => s.frontend)).toEqual([
      { kind: 'vip', address: '10.0.1.2', protocol: 'tcp', port: 0 },
      { kind: 'vip', address: '10.0.1.2', protocol: 'udp', port: 0 },
    ]);
    expect(vip[0]!.backends).toEqual([
      { address: '10.0.1.11', port: 0, weight: 1 },
      { address: '10.0.1.12', port: 0, weight: 0 },
    ]);
    const after = desiredNode(snap, settings('host-a'), facts({ now: Date.parse('2026-11-25T10:00:02.500Z') }));
    expect(after.lbTables[0]!.table.services[0]!.backends.map((b) => b.address)).toEqual(['10.0.1.11']);
  });

  it('gives dnsrr services no VIP', () => {
    const snap = snapshotFixture();
    snap.services[0]!.endpointMode = 'dnsrr';
    snap.services[0]!.ports = [];
    expect(desiredNode(snap, settings('host-a'), facts()).lbTables[0]!.table.services).toEqual([]);
  });

  it('is a pure function: the same input gives the same plan, with or without a memo', () => {
    const memo = new PlanMemo();
    desiredNode(snapshotFixture(), settings('host-a'), facts(), memo);
    expect(desiredNode(snapshotFixture(), settings('host-a'), facts(), memo)).toEqual(plan);
  });

  it('shares unchanged tables by identity, and gives a changed service a new table', () => {
    const memo = new PlanMemo();
    const snap = snapshotFixture();
    const first = desiredNode(snap, settings('host-a'), facts(), memo);
    const same = desiredNode({ ...snap }, settings('host-a'), facts(), memo);
    expect(same.lbTables[0]!.table).toBe(first.lbTables[0]!.table);
    const changed = { ...snap, tasks: snap.tasks.map((t, i) => (i === 2 ? { ...t, state: 'failed' as const } : t)) };
    const next = desiredNode(changed, settings('host-a'), facts(), memo);
    expect(next.lbTables[0]!.table).not.toBe(first.lbTables[0]!.table);
    expect(next.lbTables[0]!.table.services[0]!.backends.map((b) => b.address)).toEqual(['10.0.1.11', '10.0.1.12']);
  });
});

describe('assignGwAddresses', () => {
  const gw = settings('host-a').gwbridge;
  it('keeps addresses a task already has and gives new tasks the lowest free one', () => {
    expect(assignGwAddresses(['a', 'b', 'c'], { b: '172.18.0.3' }, gw)).toEqual({ a: '172.18.0.4', b: '172.18.0.3', c: '172.18.0.5' });
  });
  it('never hands out the gateway or the sandbox address, and refuses a full subnet', () => {
    expect(assignGwAddresses(['x'], { x: '172.18.0.2' }, gw)).toEqual({ x: '172.18.0.3' });
    expect(() => assignGwAddresses(['a', 'b', 'c', 'd', 'e'], {}, { ...gw, subnet: '172.18.0.0/29' })).toThrow(/full/);
  });
  it('moves a task whose address lies outside the subnet (the gwbridge subnet changed)', () => {
    expect(assignGwAddresses(['a', 'b'], { a: '172.19.0.7', b: '172.18.0.9' }, gw)).toEqual({ a: '172.18.0.3', b: '172.18.0.9' });
  });
});

describe('desiredNode with a memo', () => {
  it('hands back the same task wiring and mesh plan objects when a write changed nothing they depend on', () => {
    const memo = new PlanMemo();
    const snap = snapshotFixture();
    const first = desiredNode(snap, settings('host-a'), facts(), memo);
    // Another node's task moved its updatedAt: a new snapshot with one new record, the rest the same objects.
    const tasks = snap.tasks.map((t) => (t.node === 'host-b' ? { ...t, updatedAt: '2026-11-25T10:00:05.000Z' } : t));
    const second = desiredNode({ ...snap, revision: snap.revision + 1, tasks }, settings('host-a'), facts(), memo);
    expect(second.tasks[0]).toBe(first.tasks[0]);
    expect(second.hostRules).toBe(first.hostRules);
    expect(second.health).toBe(first.health);
    const sbox = (p: typeof first) => p.lbTables.find((t) => t.netns.endsWith('/ingress_sbox'))!.table;
    expect(sbox(second)).toBe(sbox(first));
    // That task stops running: the memoised planner drops it from the published ports as a fresh one does.
    const stopped = tasks.map((t) => (t.node === 'host-b' ? { ...t, state: 'failed' as const } : t));
    const third = desiredNode({ ...snap, revision: snap.revision + 2, tasks: stopped }, settings('host-a'), facts(), memo);
    expect(third).toEqual(desiredNode({ ...snap, tasks: stopped }, settings('host-a'), facts()));
    expect(sbox(third)).not.toEqual(sbox(first));
  });

  it('keeps each task\'s gwbridge leg while its wiring and the gwbridge settings are the same', () => {
    const memo = new PlanMemo();
    const snap = snapshotFixture();
    const s = settings('host-a');
    const first = desiredNode(snap, s, facts(), memo);
    const second = desiredNode({ ...snap, revision: snap.revision + 1 }, s, facts(), memo);
    // The tasks' legs (the ingress sandbox's is small and planned each pass).
    const taskLegs = (p: typeof first) => p.gwLegs.filter((l) => l.hostIf !== 'mn-sbox');
    expect(taskLegs(first).length).toBeGreaterThan(0);
    taskLegs(second).forEach((leg, i) => expect(leg).toBe(taskLegs(first)[i]));
    // Other gwbridge settings: the legs are planned again, and equal what a fresh plan says.
    const other = { ...s, gwbridge: { ...s.gwbridge } };
    const third = desiredNode(snap, other, facts(), memo);
    taskLegs(third).forEach((leg, i) => expect(leg).not.toBe(taskLegs(first)[i]));
    expect(third.gwLegs).toEqual(desiredNode(snap, other, facts()).gwLegs);
  });

  it('keeps the host firewall, task rules and processes when a node record changes nothing they depend on', () => {
    const memo = new PlanMemo();
    const snap = snapshotFixture();
    const first = desiredNode(snap, settings('host-a'), facts(), memo);
    // A label on another node: placement may care, the wiring of this node does not.
    const nodes = snap.nodes.map((n) => (n.id === 'host-b' ? { ...n, labels: { zone: 'b' } } : n));
    const second = desiredNode({ ...snap, revision: snap.revision + 1, nodes }, settings('host-a'), facts(), memo);
    expect(second.hostFirewall).toHaveLength(first.hostFirewall.length);
    second.hostFirewall.forEach((set, i) => expect(set).toBe(first.hostFirewall[i]));
    expect(second.taskRules.length).toBeGreaterThan(0);
    second.taskRules.forEach((rules, i) => expect(rules).toBe(first.taskRules[i]));
    expect(second.processes.length).toBeGreaterThan(0);
    second.processes.forEach((p, i) => expect(p).toBe(first.processes[i]));
    expect(second.overlays.length).toBeGreaterThan(0);
    second.overlays.forEach((o, i) => expect(o).toBe(first.overlays[i]));
    // A peer's new underlay address is the firewall's business: the VXLAN set is planned again.
    const moved = snap.nodes.map((n) => (n.id === 'host-b' ? { ...n, underlayIp: '192.0.2.99' } : n));
    const third = desiredNode({ ...snap, revision: snap.revision + 2, nodes: moved }, settings('host-a'), facts(), memo);
    expect(JSON.stringify(third.hostFirewall)).toContain('192.0.2.99');
    expect(third).toEqual(desiredNode({ ...snap, nodes: moved }, settings('host-a'), facts()));
    expect(JSON.stringify(third.overlays)).toContain('192.0.2.99');
    // Another MTU on the same settings object (the agent reads its underlay at start) is planned again too.
    const s = settings('host-a');
    const before = desiredNode(snap, s, facts(), memo);
    s.underlayMtu = 9000;
    expect(desiredNode(snap, s, facts(), memo).overlays).toEqual(desiredNode(snap, s, facts()).overlays);
    expect(desiredNode(snap, s, facts(), memo).overlays).not.toEqual(before.overlays);
  });

  it('plans again when a published service changes', () => {
    const memo = new PlanMemo();
    const snap = snapshotFixture();
    const first = desiredNode(snap, settings('host-a'), facts(), memo);
    const web = { ...snap.services[0]!, ports: [{ ...snap.services[0]!.ports[0]!, published: 8001 }] };
    const second = desiredNode({ ...snap, services: [web] }, settings('host-a'), facts(), memo);
    expect(second.hostRules).not.toBe(first.hostRules);
    expect(JSON.stringify(second.hostRules)).toContain('8001');
    expect(second.tasks[0]!.service.ports[0]!.published).toBe(8001);
  });
});

describe('desiredNode name views with a memo', () => {
  const viewOf = (p: ReturnType<typeof desiredNode>) => p.nameViews[0]!.view;

  it('hands back the same view when a write changes no name, even for a replaced record', () => {
    const memo = new PlanMemo();
    const snap = snapshotFixture();
    const first = desiredNode(snap, settings('host-a'), facts(), memo);
    // A node label or another node's updatedAt: new arrays, new records, the same names.
    const tasks = snap.tasks.map((t) => (t.node === 'host-b' ? { ...t, updatedAt: '2026-11-25T10:00:05.000Z' } : t));
    const second = desiredNode({ ...snap, revision: snap.revision + 1, nodes: [...snap.nodes], tasks }, settings('host-a'), facts(), memo);
    expect(viewOf(second)).toBe(viewOf(first));
    expect(second.nameViews).toEqual(desiredNode({ ...snap, tasks }, settings('host-a'), facts()).nameViews);
  });

  it('builds a new view when a name changes: a task stops running, a service gets an alias', () => {
    const memo = new PlanMemo();
    const snap = snapshotFixture();
    const first = desiredNode(snap, settings('host-a'), facts(), memo);
    const remote = snap.tasks.findIndex((t) => t.node === 'host-b' && t.service === 'web');
    const stopped = { ...snap, tasks: snap.tasks.map((t, i) => (i === remote ? { ...t, state: 'failed' as const } : t)) };
    const second = desiredNode(stopped, settings('host-a'), facts(), memo);
    expect(viewOf(second)).not.toBe(viewOf(first));
    expect(second.nameViews).toEqual(desiredNode(stopped, settings('host-a'), facts()).nameViews);
    expect(JSON.stringify(viewOf(second))).not.toBe(JSON.stringify(viewOf(first)));

    const web = snap.services[0]!;
    const aliased = { ...stopped, services: [{ ...web, aliases: { appnet: ['www'] } }, ...stopped.services.slice(1)] };
    const third = desiredNode(aliased, settings('host-a'), facts(), memo);
    expect(viewOf(third)).not.toBe(viewOf(second));
    expect(third.nameViews).toEqual(desiredNode(aliased, settings('host-a'), facts()).nameViews);
  });
});
