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

describe('placementActions', () => {
  it('changes nothing when every replica runs once where placement wants it', () => {
    for (const node of ['host-a', 'host-b', 'host-c']) {
      expect(placementActions(snapshotFixture(), node, now, 2)).toEqual({ claim: [], drain: [], remove: [] });
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
    expect(placementActions(snapshotFixture(), 'host-z', now, 2)).toEqual({ claim: [], drain: [], remove: [] });
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
    for (const node of allNodes) expect(placementActions(snap, node, now, 2)).toEqual({ claim: [], drain: [], remove: [] });
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

