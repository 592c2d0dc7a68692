import { describe, expect, it } from 'vitest';
import { desiredNode } from './node-plan.js';
import { vtepProbeTarget } from './vtep-target.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';

const facts = { gwAddresses: {}, unusableExternal: new Set<string>(), ingressEndpoints: endpointsFixture, now: 0 };

describe('vtepProbeTarget', () => {
  it("probes from this node's ingress sandbox address to every live peer's", () => {
    const snap = snapshotFixture();
    const plan = desiredNode(snap, settingsFixture('host-b'), facts);
    expect(vtepProbeTarget(plan, '/run/host-b/netns', snap.nodes, endpointsFixture, 'host-b')).toEqual({
      netns: '/run/host-b/netns/ingress_sbox',
      source: '10.255.0.4',
      peers: [
        { node: 'host-a', address: '10.255.0.3' },
        { node: 'host-c', address: '10.255.0.5' },
      ],
    });
  });

  it('leaves out peers whose lease ended', () => {
    const snap = snapshotFixture();
    const plan = desiredNode(snap, settingsFixture('host-a'), facts);
    const target = vtepProbeTarget(plan, '/run/host-a/netns', snap.nodes.filter((n) => n.id !== 'host-c'), endpointsFixture, 'host-a');
    expect(target?.peers.map((p) => p.node)).toEqual(['host-b']);
  });

  it('probes nothing while the node has no ingress sandbox', () => {
    const snap = snapshotFixture();
    snap.networks = snap.networks.filter((n) => !n.ingress);
    const plan = desiredNode(snap, settingsFixture('host-a'), facts);
    expect(vtepProbeTarget(plan, '/run/host-a/netns', snap.nodes, endpointsFixture, 'host-a')).toBeNull();
  });
});
