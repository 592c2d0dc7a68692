import { describe, expect, it } from 'vitest';
import { placementActions } from './placement-actions.js';
import { snapshotFixture } from './agent-fixtures.test-data.js';
import type { ClusterSnapshot } from '../model/cluster.js';
import type { NodeAvailability } from '../model/records.js';

/** The fixture with `node` set to `availability` in its persistent record. */
function withAvailability(snap: ClusterSnapshot, node: string, availability: NodeAvailability): ClusterSnapshot {
  const at = '2026-11-25T09:00:00.000Z';
  const others = snap.nodeInfo.filter((i) => i.id !== node);
  const ip = snap.nodes.find((n) => n.id === node)?.underlayIp ?? '192.0.2.99';
  return { ...snap, nodeInfo: [...others, { id: node, name: node, underlayIp: ip, availability, labels: {}, createdAt: at, updatedAt: at }] };
}

const allNodes = ['host-a', 'host-b', 'host-c'];
const claimsOf = (snap: ClusterSnapshot, nodes = allNodes) =>
  nodes.flatMap((n) => placementActions(snap, n, now, 2).claim.map((c) => ({ node: n, service: c.service, slot: c.slot })));

const now = new Date('2026-11-25T10:00:10.000Z');

/** The store writes of placementActions (what this file is about), without the rollout part. */
const writes = (snap: ClusterSnapshot, node: string) => {
  const { claim, drain, remove } = placementActions(snap, node, now, 2);
  return { claim, drain, remove };
};

describe('placementActions', () => {
  it('changes nothing when every replica runs once where placement wants it', () => {
    for (const node of ['host-a', 'host-b', 'host-c']) {
      expect(writes(snapshotFixture(), node)).toEqual({ claim: [], drain: [], remove: [] });
    }
  });

  it('claims a dead node\'s slot on exactly one live node', () => {
    const snap = snapshotFixture();
    snap.nodes = snap.nodes.filter((n) => n.id !== 'host-c');
    const claims = ['host-a', 'host-b'].flatMap((n) => placementActions(snap, n, now, 2).claim.map((c) => ({ ...c, n })));
    expect(claims).toHaveLength(1);
    expect(claims[0]).toMatchObject({ service: 'web', slot: 3 });
  });

  it('scales down by draining the removed slots, then removes them after the deadline', () => {
    const snap = snapshotFixture();
    snap.services[0]!.replicas = 1;
    const drained = ['host-a', 'host-b', 'host-c'].flatMap((n) => placementActions(snap, n, now, 2).drain.map((t) => t.slot));
    expect(drained.sort()).toEqual([2, 3]);
    snap.tasks[1]!.desiredState = 'shutdown';
    snap.tasks[1]!.updatedAt = '2026-11-25T10:00:09.000Z';
    expect(placementActions(snap, 'host-b', now, 2).remove).toEqual([]);
    expect(placementActions(snap, 'host-b', new Date('2026-11-25T10:00:11.500Z'), 2).remove.map((t) => t.slot)).toEqual([2]);
  });

  it('removes tasks of a deleted service at once and claims new slots when scaled up', () => {
    const gone = snapshotFixture();
    gone.services = [];
    expect(placementActions(gone, 'host-a', now, 2).remove.map((t) => t.slot)).toEqual([1]);
    const up = snapshotFixture();
    up.services[0]!.replicas = 6;
    const claims = ['host-a', 'host-b', 'host-c'].flatMap((n) => placementActions(up, n, now, 2).claim.map((c) => c.slot));
    expect(claims.sort()).toEqual([4, 5, 6]);
  });

  it('does nothing for a node that is not registered', () => {
    expect(writes(snapshotFixture(), 'host-z')).toEqual({ claim: [], drain: [], remove: [] });
  });

  it('a drained node drains its tasks, and the slot is claimed elsewhere only once its record is gone', () => {
    let snap = withAvailability(snapshotFixture(), 'host-c', 'drain');
    expect(placementActions(snap, 'host-c', now, 2)).toMatchObject({ claim: [], drain: [{ slot: 3 }], remove: [] });
    // While host-c still holds slot 3 (running, then draining at weight 0), nobody claims it.
    expect(claimsOf(snap)).toEqual([]);
    snap.tasks[2]!.desiredState = 'shutdown';
    snap.tasks[2]!.updatedAt = '2026-11-25T10:00:09.000Z';
    expect(claimsOf(snap)).toEqual([]);
    expect(placementActions(snap, 'host-c', new Date('2026-11-25T10:00:11.500Z'), 2).remove.map((t) => t.slot)).toEqual([3]);
    snap = { ...snap, tasks: snap.tasks.slice(0, 2) };
    const claims = claimsOf(snap);
    expect(claims).toHaveLength(1);
    expect(claims[0]).toMatchObject({ service: 'web', slot: 3 });
    expect(claims[0]!.node).not.toBe('host-c');
  });

  it('a paused node keeps its tasks and takes no new one', () => {
    const snap = withAvailability(snapshotFixture(), 'host-b', 'pause');
    for (const node of allNodes) expect(writes(snap, node)).toEqual({ claim: [], drain: [], remove: [] });
    snap.services[0]!.replicas = 6;
    const claims = claimsOf(snap);
    expect(claims.map((c) => c.slot).sort()).toEqual([4, 5, 6]);
    expect(claims.some((c) => c.node === 'host-b')).toBe(false);
    // Back to active, it takes its share of a fresh scale-up again.
    const active = withAvailability(snap, 'host-b', 'active');
    expect(claimsOf(active).filter((c) => c.node === 'host-b')).toHaveLength(1);
  });

  it('a dead node\'s slot goes to an active node, never to a paused or drained one', () => {
    for (const availability of ['pause', 'drain'] as const) {
      const snap = withAvailability(snapshotFixture(), 'host-c', availability);
      snap.nodes = snap.nodes.filter((n) => n.id !== 'host-b');
      expect(claimsOf(snap, ['host-a', 'host-c'])).toEqual([{ node: 'host-a', service: 'web', slot: 2 }]);
    }
  });

  it('with every node drained, tasks drain and no slot is claimed', () => {
    let snap = snapshotFixture();
    for (const node of allNodes) snap = withAvailability(snap, node, 'drain');
    expect(allNodes.flatMap((n) => placementActions(snap, n, now, 2).drain.map((t) => t.slot)).sort()).toEqual([1, 2, 3]);
    expect(claimsOf({ ...snap, tasks: [] })).toEqual([]);
  });
});


describe('placementActions for global and constrained services', () => {
  /** The fixture's web as a global service, one task per host. */
  const globalFixture = (): ClusterSnapshot => {
    const snap = snapshotFixture();
    snap.services[0] = { ...snap.services[0]!, mode: 'global', replicas: 0 };
    return snap;
  };

  it('a global service that runs everywhere changes nothing', () => {
    for (const node of allNodes) expect(writes(globalFixture(), node)).toEqual({ claim: [], drain: [], remove: [] });
  });

  it('a node that joins claims the next slot of a global service; the others claim nothing', () => {
    const snap = globalFixture();
    snap.nodes = [...snap.nodes, { id: 'host-d', name: 'host-d', underlayIp: '192.0.2.4', lease: '104' }];
    expect(claimsOf(snap, [...allNodes, 'host-d'])).toEqual([{ node: 'host-d', service: 'web', slot: 4 }]);
  });

  it('a drained node drains its global task; nobody claims the slot', () => {
    const snap = withAvailability(globalFixture(), 'host-b', 'drain');
    expect(placementActions(snap, 'host-b', now, 2)).toMatchObject({ claim: [], drain: [{ slot: 2 }], remove: [] });
    expect(claimsOf(snap)).toEqual([]);
  });

  it('the global task of a gone node is removed once, by the first live node, when no node takes its slot', () => {
    const snap = globalFixture();
    snap.nodes = snap.nodes.filter((n) => n.id !== 'host-c');
    expect(placementActions(snap, 'host-a', now, 2).remove.map((t) => `${t.slot}@${t.node}`)).toEqual(['3@host-c']);
    expect(placementActions(snap, 'host-b', now, 2).remove).toEqual([]);
    // A replicated slot of a gone node is claimed instead, not removed.
    const replicated = snapshotFixture();
    replicated.nodes = replicated.nodes.filter((n) => n.id !== 'host-c');
    expect(placementActions(replicated, 'host-a', now, 2).remove).toEqual([]);
  });

  it('a constraint added drains the tasks that no longer fit, and their slots go to nodes that do', () => {
    let snap = snapshotFixture();
    snap.services[0] = { ...snap.services[0]!, placement: { constraints: ['node.id==host-a'] } };
    expect(allNodes.flatMap((n) => placementActions(snap, n, now, 2).drain.map((t) => `${t.slot}@${t.node}`)).sort()).toEqual(['2@host-b', '3@host-c']);
    expect(claimsOf(snap)).toEqual([]);
    snap = { ...snap, tasks: snap.tasks.slice(0, 1) };
    expect(claimsOf(snap).sort((x, y) => x.slot - y.slot)).toEqual([
      { node: 'host-a', service: 'web', slot: 2 },
      { node: 'host-a', service: 'web', slot: 3 },
    ]);
  });

  it('with a cap that leaves a replica pending, nobody claims it', () => {
    const snap = snapshotFixture();
    snap.services[0] = { ...snap.services[0]!, replicas: 4, placement: { constraints: [], maxReplicasPerNode: 1 } };
    expect(claimsOf(snap)).toEqual([]);
    for (const node of allNodes) expect(placementActions(snap, node, now, 2).drain).toEqual([]);
  });
});
