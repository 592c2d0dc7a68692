import { describe, expect, it } from 'vitest';
import { assignGwAddresses, desiredNodeState, gwHostIfName, type NodeSettings } from './node-state.js';
import { eastWestTable } from './east-west-table.js';
import { snapshotFixture } from './agent-fixtures.test-data.js';

const settings = (nodeId: string): NodeSettings => ({
  nodeId,
  netnsDir: `/run/${nodeId}/netns`,
  underlayIp: nodeId === 'host-a' ? '192.0.2.1' : '192.0.2.2',
  underlayMtu: 1500,
  gwbridge: { name: 'meshnet_gwbr', subnet: '172.18.0.0/16', gateway: '172.18.0.1', sboxAddress: '172.18.0.2' },
});
const endpoints = [
  { node: 'host-a', ip: '10.255.0.3', mac: '02:42:0a:ff:00:03' },
  { node: 'host-b', ip: '10.255.0.4', mac: '02:42:0a:ff:00:04' },
  { node: 'host-c', ip: '10.255.0.5', mac: '02:42:0a:ff:00:05' },
];

describe('desiredNodeState', () => {
  const state = desiredNodeState({ snapshot: snapshotFixture(), settings: settings('host-a'), ingressEndpoints: endpoints, currentGw: {} });

  it('wires the local task: ingress first (eth0), its network next, the gwbridge leg last', () => {
    expect(state.tasks).toHaveLength(1);
    const t = state.tasks[0]!;
    expect(t.name).toBe('web.1');
    expect(t.interfaces.map((i) => `${i.ifname}=${i.network}`)).toEqual(['eth0=ingress', 'eth1=appnet']);
    expect(t.gw).toMatchObject({ ifname: 'eth2', ip: '172.18.0.3', hostIf: gwHostIfName('task00000001') });
  });

  it('builds one overlay per network in use, with remote tasks and sandboxes as peers', () => {
    const ingress = state.overlays.find((o) => o.network.name === 'ingress')!;
    expect(ingress.local.map((l) => l.ip).sort()).toEqual(['10.255.0.11', '10.255.0.3']);
    expect(ingress.remote.map((r) => `${r.ip}@${r.vtep}`).sort()).toEqual(['10.255.0.12@192.0.2.2', '10.255.0.13@192.0.2.3', '10.255.0.4@192.0.2.2', '10.255.0.5@192.0.2.3']);
    const appnet = state.overlays.find((o) => o.network.name === 'appnet')!;
    expect(appnet.remote).toHaveLength(2);
    expect(appnet.underlayMtu).toBe(1500);
  });

  it('drops a dead node\'s endpoints and peers', () => {
    const snap = snapshotFixture();
    snap.nodes = snap.nodes.filter((n) => n.id !== 'host-c');
    const s = desiredNodeState({ snapshot: snap, settings: settings('host-a'), ingressEndpoints: endpoints, currentGw: {} });
    for (const o of s.overlays) expect(o.remote.some((r) => r.vtep === '192.0.2.3')).toBe(false);
  });

  it('gives the task a DNS view of its own network only (the ingress network has no names)', () => {
    expect(state.dnsViews).toHaveLength(1);
    expect(state.dnsViews[0]!.view.networks.map((n) => n.name)).toEqual(['appnet']);
  });

  it('feeds the mesh this node\'s sandbox addresses and every task of published services', () => {
    expect(state.mesh!.node.sbox).toEqual({ gwbridgeAddress: '172.18.0.2', ingressAddress: '10.255.0.3' });
    expect(state.mesh!.tasks.map((t) => t.state)).toEqual(['running', 'running', 'running']);
  });

  it('hands the mesh the ports other programs hold on this host, so publishing them here is refused', () => {
    const bound = [{ protocol: 'tcp' as const, port: 22, owner: 'a program already listening on this host' }];
    const s = desiredNodeState({ snapshot: snapshotFixture(), settings: settings('host-a'), ingressEndpoints: endpoints, currentGw: {}, boundHostPorts: bound });
    expect(s.mesh!.boundHostPorts).toEqual(bound);
  });

  it('is a pure function: the same input gives the same state', () => {
    const again = desiredNodeState({ snapshot: snapshotFixture(), settings: settings('host-a'), ingressEndpoints: endpoints, currentGw: {} });
    expect(again).toEqual(state);
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
});

describe('eastWestTable', () => {
  it('balances the VIP over running tasks on live nodes; draining ones get weight 0 until the deadline', () => {
    const snap = snapshotFixture();
    snap.tasks[1]!.desiredState = 'shutdown';
    snap.tasks[2]!.state = 'starting';
    const state = desiredNodeState({ snapshot: snap, settings: settings('host-a'), ingressEndpoints: endpoints, currentGw: {} });
    const beforeDeadline = Date.parse('2026-11-25T10:00:01.000Z');
    const table = eastWestTable(snap, state.tasks[0]!, 2, beforeDeadline);
    expect(table.services).toHaveLength(2);
    expect(table.services[0]!.frontend).toEqual({ kind: 'vip', address: '10.0.1.2', protocol: 'tcp', port: 0 });
    expect(table.services[0]!.backends).toEqual([
      { address: '10.0.1.11', port: 0, weight: 1 },
      { address: '10.0.1.12', port: 0, weight: 0 },
    ]);
    const afterDeadline = eastWestTable(snap, state.tasks[0]!, 2, Date.parse('2026-11-25T10:00:02.500Z'));
    expect(afterDeadline.services[0]!.backends.map((b) => b.address)).toEqual(['10.0.1.11']);
  });
  it('a VIP forwards every TCP and UDP port, keeping the port', () => {
    const snap = snapshotFixture();
    const state = desiredNodeState({ snapshot: snap, settings: settings('host-a'), ingressEndpoints: endpoints, currentGw: {} });
    const table = eastWestTable(snap, state.tasks[0]!, 2, Date.now());
    expect(table.services.map((s) => s.frontend)).toEqual([
      { kind: 'vip', address: '10.0.1.2', protocol: 'tcp', port: 0 },
      { kind: 'vip', address: '10.0.1.2', protocol: 'udp', port: 0 },
    ]);
    expect(table.services[0]!.backends.map((b) => `${b.address}:${b.port}`)).toEqual(['10.0.1.11:0', '10.0.1.12:0', '10.0.1.13:0']);
  });

  it('gives dnsrr services no VIP', () => {
    const snap = snapshotFixture();
    snap.services[0]!.endpointMode = 'dnsrr';
    const state = desiredNodeState({ snapshot: snap, settings: settings('host-a'), ingressEndpoints: endpoints, currentGw: {} });
    expect(eastWestTable(snap, state.tasks[0]!, 2, Date.now()).services).toEqual([]);
  });
});
