import { describe, expect, it } from 'vitest';
import { desiredNode, PlanMemo, type NodeFacts, type NodePlan } from './node-plan.js';
import { reachableView } from './vtep-exclusion.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';

const facts = (over: Partial<NodeFacts> = {}): NodeFacts => ({ gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpointsFixture, now: Date.parse('2026-11-25T10:00:01.000Z'), ...over });
const sboxBackends = (p: NodePlan) => p.lbTables.find((t) => t.netns.endsWith('/ingress_sbox'))!.table.services[0]!.backends.map((b) => b.address);
const vipBackends = (p: NodePlan) => p.lbTables.find((t) => !t.netns.endsWith('/ingress_sbox'))!.table.services[0]!.backends.map((b) => b.address);
const taskIps = (p: NodePlan) => p.nameViews[0]!.view.networks[0]!.services.find((s) => s.name === 'web')!.taskIps;
const live = () => true;

describe('reachableView', () => {
  it('returns its very inputs when no node is unreachable', () => {
    const snap = snapshotFixture();
    const alive = snap.tasks.slice();
    for (const set of [undefined, new Set<string>()]) {
      const v = reachableView(snap, alive, set, live);
      expect(v.snapshot).toBe(snap);
      expect(v.alive).toBe(alive);
    }
  });

  it('leaves out the tasks of unreachable nodes', () => {
    const snap = snapshotFixture();
    const v = reachableView(snap, snap.tasks, new Set(['host-c']), live);
    expect(v.snapshot.tasks.map((t) => t.node)).toEqual(['host-a', 'host-b']);
    expect(v.alive.map((t) => t.node)).toEqual(['host-a', 'host-b']);
    expect(v.snapshot.services).toBe(snap.services);
  });

  it("keeps a service's tasks when no serving task would be left elsewhere", () => {
    const snap = snapshotFixture();
    // host-a's task is starting and host-b's node is dead by its lease: only the unreachable host-c serves.
    snap.tasks[0]!.state = 'starting';
    const v = reachableView(snap, snap.tasks, new Set(['host-c']), (n) => n !== 'host-b');
    expect(v.snapshot).toBe(snap);
    const all = reachableView(snap, snap.tasks, new Set(['host-a', 'host-b', 'host-c']), live);
    expect(all.snapshot.tasks).toHaveLength(3);
  });

  it('judges each service on its own', () => {
    const snap = snapshotFixture();
    const api = { ...snap.services[0]!, name: 'api', ports: [] };
    snap.services.push(api);
    snap.tasks.push({ ...snap.tasks[2]!, id: 'api-on-c', service: 'api', slot: 1 });
    const v = reachableView(snap, snap.tasks, new Set(['host-c']), live);
    // web has other backends, so its task on host-c goes; api has only that one, so it stays.
    expect(v.snapshot.tasks.map((t) => t.id)).toEqual(['task00000001', 'task00000002', 'api-on-c']);
  });
});

describe('desiredNode with unreachable VTEPs', () => {
  const hostA = settingsFixture('host-a');

  it('takes the unreachable node out of published ports, VIPs and tasks. answers, but keeps it as an overlay peer', () => {
    const before = desiredNode(snapshotFixture(), hostA, facts());
    const p = desiredNode(snapshotFixture(), hostA, facts({ unreachableNodes: new Set(['host-c']) }));
    expect(sboxBackends(before)).toEqual(['10.255.0.11', '10.255.0.12', '10.255.0.13']);
    expect(sboxBackends(p)).toEqual(['10.255.0.11', '10.255.0.12']);
    expect(vipBackends(before)).toEqual(['10.0.1.11', '10.0.1.12', '10.0.1.13']);
    expect(vipBackends(p)).toEqual(['10.0.1.11', '10.0.1.12']);
    expect(taskIps(p)).toEqual(['10.0.1.11', '10.0.1.12']);
    expect(p.overlays).toEqual(before.overlays);
    expect(p.hostFirewall).toEqual(before.hostFirewall);
  });

  it('puts the backends back once the node answers again', () => {
    const memo = new PlanMemo();
    desiredNode(snapshotFixture(), hostA, facts({ unreachableNodes: new Set(['host-c']) }), memo);
    const back = desiredNode(snapshotFixture(), hostA, facts({ unreachableNodes: new Set() }), memo);
    expect(sboxBackends(back)).toEqual(['10.255.0.11', '10.255.0.12', '10.255.0.13']);
    expect(vipBackends(back)).toEqual(['10.0.1.11', '10.0.1.12', '10.0.1.13']);
  });

  it('never empties a table on probe verdicts alone', () => {
    const p = desiredNode(snapshotFixture(), hostA, facts({ unreachableNodes: new Set(['host-b', 'host-c']) }));
    expect(sboxBackends(p)).toEqual(['10.255.0.11']);
    const snap = snapshotFixture();
    snap.tasks[0]!.state = 'starting';
    const onlyRemote = desiredNode(snap, hostA, facts({ unreachableNodes: new Set(['host-b', 'host-c']) }));
    expect(sboxBackends(onlyRemote)).toEqual(['10.255.0.12', '10.255.0.13']);
  });

  it('lets ping sockets into the ingress sandbox only when the agent probes', () => {
    const ping = (p: NodePlan) => p.sysctls.filter((s) => s.key === 'net.ipv4.ping_group_range');
    expect(ping(desiredNode(snapshotFixture(), hostA, facts()))).toEqual([]);
    expect(ping(desiredNode(snapshotFixture(), { ...hostA, vtepProbe: true }, facts()))).toEqual([{ netns: '/run/host-a/netns/ingress_sbox', key: 'net.ipv4.ping_group_range', value: '0 0' }]);
  });
});
