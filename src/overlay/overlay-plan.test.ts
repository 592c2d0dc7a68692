import { describe, expect, it } from 'vitest';
import { planOverlay, type ObservedOverlay } from './overlay-plan.js';
import { desiredOverlayState } from './overlay-state.js';
import type { OverlayInput } from './overlay-spec.js';

const input: OverlayInput = {
  network: { name: 'appnet', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
  underlayMtu: 1500,
  local: [{ id: 'web.1', sandbox: '/run/x/t1', ifname: 'eth0', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' }],
  remote: [{ ip: '10.0.1.9', mac: '02:42:0a:00:01:09', vtep: '192.0.2.3' }],
};
const desired = desiredOverlayState(input);
const hostIf = desired.endpoints[0]!.hostIf;

/** What the kernel looks like once `desired` has been applied. */
function converged(): ObservedOverlay {
  return {
    netnsExists: true,
    bridge: { cidrs: ['10.0.1.1/24'], mtu: 1450, up: true },
    vxlan: { vni: 4096, port: 4789, mtu: 1450, up: true, learning: false, proxy: true, onBridge: true },
    hostIfs: [{ name: hostIf, onBridge: true, up: true }],
    sandboxSides: { [hostIf]: { present: true, cidrs: ['10.0.1.2/24'], mac: '02:42:0a:00:01:02', mtu: 1450, up: true } },
    neighbors: [{ ip: '10.0.1.9', mac: '02:42:0a:00:01:09' }],
    fdb: [{ mac: '02:42:0a:00:01:09', dst: '192.0.2.3' }],
  };
}

describe('planOverlay', () => {
  it('builds everything, in order, on an empty host', () => {
    const ops = planOverlay({ netnsExists: false, hostIfs: [], sandboxSides: {}, neighbors: [], fdb: [] }, desired);
    expect(ops.map((o) => o.op)).toEqual(['createNetns', 'createBridge', 'createVxlan', 'attachEndpoint', 'setFdb', 'setNeighbor']);
  });

  it('does nothing when the kernel already matches', () => {
    expect(planOverlay(converged(), desired)).toEqual([]);
  });

  it('removes a departed remote endpoint neighbour first, then its FDB entry', () => {
    const ops = planOverlay(converged(), desiredOverlayState({ ...input, remote: [] }));
    expect(ops).toEqual([
      { op: 'deleteNeighbor', ip: '10.0.1.9' },
      { op: 'deleteFdb', mac: '02:42:0a:00:01:09', dst: '192.0.2.3' },
    ]);
  });

  it('moves a peer whose task moved to another VTEP without touching others', () => {
    const moved = desiredOverlayState({ ...input, remote: [{ ip: '10.0.1.9', mac: '02:42:0a:00:01:09', vtep: '192.0.2.4' }] });
    expect(planOverlay(converged(), moved)).toEqual([
      { op: 'deleteFdb', mac: '02:42:0a:00:01:09', dst: '192.0.2.3' },
      { op: 'setFdb', peer: { ip: '10.0.1.9', mac: '02:42:0a:00:01:09', vtep: '192.0.2.4' } },
    ]);
  });

  it('detaches endpoints meshnet no longer wants and rebuilds a half-made one', () => {
    const obs = converged();
    obs.hostIfs.push({ name: 've00000000000', onBridge: true, up: true });
    obs.sandboxSides[hostIf] = { present: false, cidrs: [] };
    expect(planOverlay(obs, desired)).toEqual([
      { op: 'detachEndpoint', hostIf: 've00000000000' },
      { op: 'detachEndpoint', hostIf },
      { op: 'attachEndpoint', endpoint: desired.endpoints[0] },
    ]);
  });

  it('replaces a VXLAN device whose VNI changed and rewrites all its peers', () => {
    const obs = converged();
    obs.vxlan!.vni = 4097;
    expect(planOverlay(obs, desired).map((o) => o.op)).toEqual(['deleteVxlan', 'createVxlan', 'setFdb', 'setNeighbor']);
  });

  it("replaces a VXLAN device made with another source address (the node's advertise address changed)", () => {
    const withSource = desiredOverlayState({ ...input, localVtep: '192.0.2.1' });
    const obs = converged();
    obs.vxlan!.local = '192.0.2.1';
    expect(planOverlay(obs, withSource)).toEqual([]);
    const moved = desiredOverlayState({ ...input, localVtep: '192.0.2.7' });
    expect(planOverlay(obs, moved).map((o) => o.op)).toEqual(['deleteVxlan', 'createVxlan', 'setFdb', 'setNeighbor']);
    // A device made without a source (an older meshnet) sends from the routed address: kept.
    delete obs.vxlan!.local;
    expect(planOverlay(obs, moved)).toEqual([]);
  });

  it('fixes a bridge with a stray address', () => {
    const obs = converged();
    obs.bridge!.cidrs.push('10.9.9.1/24');
    expect(planOverlay(obs, desired)).toEqual([{ op: 'fixBridge', bridge: desired.bridge, removeCidrs: ['10.9.9.1/24'] }]);
  });
});
