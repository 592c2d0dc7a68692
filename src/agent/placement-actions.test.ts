import { describe, expect, it } from 'vitest';
import { placementActions } from './placement-actions.js';
import { snapshotFixture } from './agent-fixtures.test-data.js';

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
});
