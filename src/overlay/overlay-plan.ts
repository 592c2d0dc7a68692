import type { EndpointState, OverlayState, PeerState } from './overlay-state.js';

/** What the kernel holds for one overlay network on one host, as read back. */
export interface ObservedOverlay {
  netnsExists: boolean;
  bridge?: { cidrs: string[]; mtu: number; up: boolean };
  /** `local`: the underlay source the device was made with (absent: none, the host's route picks it). */
  vxlan?: { vni: number; port: number; mtu: number; up: boolean; learning: boolean; proxy: boolean; onBridge: boolean; local?: string };
  /** meshnet's veths (ve*) in the overlay namespace and whether each is on br0. */
  hostIfs: { name: string; onBridge: boolean; up: boolean }[];
  /** For each desired endpoint (by host-side veth name): what its sandbox side looks like. */
  sandboxSides: Record<string, { present: boolean; cidrs: string[]; mac?: string; mtu?: number; up?: boolean; gateway?: string }>;
  neighbors: { ip: string; mac: string }[];
  fdb: { mac: string; dst: string }[];
}

export type OverlayOp =
  | { op: 'createNetns' }
  | { op: 'createBridge'; bridge: OverlayState['bridge'] }
  | { op: 'fixBridge'; bridge: OverlayState['bridge']; removeCidrs: string[] }
  | { op: 'createVxlan'; vxlan: OverlayState['vxlan'] }
  | { op: 'deleteVxlan' }
  | { op: 'fixVxlan'; vxlan: OverlayState['vxlan'] }
  | { op: 'attachEndpoint'; endpoint: EndpointState }
  | { op: 'detachEndpoint'; hostIf: string }
  | { op: 'setFdb'; peer: PeerState }
  | { op: 'setNeighbor'; peer: PeerState }
  | { op: 'deleteNeighbor'; ip: string }
  | { op: 'deleteFdb'; mac: string; dst: string };

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

/**
 * The ordered operations that turn `observed` into `desired`; empty when they already match.
 * Remote peers are written FDB first, then neighbour, and removed in reverse, so the kernel never
 * answers for an address it cannot yet deliver to (flannel's ordering).
 */
export function planOverlay(observed: ObservedOverlay, desired: OverlayState): OverlayOp[] {
  const ops: OverlayOp[] = [];
  if (!observed.netnsExists) ops.push({ op: 'createNetns' });

  const br = observed.bridge;
  if (!br) ops.push({ op: 'createBridge', bridge: desired.bridge });
  else if (!sameSet(br.cidrs, [desired.bridge.cidr]) || br.mtu !== desired.bridge.mtu || !br.up) {
    ops.push({ op: 'fixBridge', bridge: desired.bridge, removeCidrs: br.cidrs.filter((c) => c !== desired.bridge.cidr) });
  }

  const vx = observed.vxlan;
  const want = desired.vxlan;
  // A device made with another source address (the node's advertise address changed) would send from an
  // address the host may no longer have, and peers would not know it: made again. One made without a
  // source (older meshnet) sends from the routed one, which is right, so it is kept.
  const movedSource = !!vx?.local && vx.local !== want.local;
  const vxlanReplaced = !!vx && (vx.vni !== want.vni || vx.port !== want.port || vx.learning !== want.learning || vx.proxy !== want.proxy || movedSource);
  if (vxlanReplaced) ops.push({ op: 'deleteVxlan' });
  if (!vx || vxlanReplaced) ops.push({ op: 'createVxlan', vxlan: want });
  else if (vx.mtu !== want.mtu || !vx.up || !vx.onBridge) ops.push({ op: 'fixVxlan', vxlan: want });

  const wanted = new Map(desired.endpoints.map((e) => [e.hostIf, e]));
  for (const h of observed.hostIfs) {
    if (!wanted.has(h.name)) ops.push({ op: 'detachEndpoint', hostIf: h.name });
  }
  const present = new Map(observed.hostIfs.map((h) => [h.name, h]));
  for (const e of desired.endpoints) {
    const host = present.get(e.hostIf);
    const side = observed.sandboxSides[e.hostIf];
    const healthy =
      host?.onBridge &&
      host.up &&
      side?.present &&
      side.up &&
      side.mac === e.mac &&
      side.mtu === e.mtu &&
      sameSet(side.cidrs, [e.cidr]) &&
      (e.gateway === undefined || side.gateway === e.gateway);
    if (healthy) continue;
    // A half-made or drifted endpoint is rebuilt whole rather than patched field by field.
    if (host) ops.push({ op: 'detachEndpoint', hostIf: e.hostIf });
    ops.push({ op: 'attachEndpoint', endpoint: e });
  }

  // After a VXLAN device is replaced its entries are gone with it: write them all again.
  const haveNeigh = new Map(vxlanReplaced ? [] : observed.neighbors.map((n) => [n.ip, n.mac]));
  const haveFdb = new Set(vxlanReplaced ? [] : observed.fdb.map((f) => `${f.mac}>${f.dst}`));
  const wantNeigh = new Map(desired.peers.map((p) => [p.ip, p.mac]));
  const wantFdb = new Set(desired.peers.map((p) => `${p.mac}>${p.vtep}`));
  for (const [ip, mac] of haveNeigh) if (wantNeigh.get(ip) !== mac) ops.push({ op: 'deleteNeighbor', ip });
  for (const key of haveFdb) {
    if (!wantFdb.has(key)) {
      const [mac, dst] = key.split('>') as [string, string];
      ops.push({ op: 'deleteFdb', mac, dst });
    }
  }
  for (const p of desired.peers) {
    if (!haveFdb.has(`${p.mac}>${p.vtep}`)) ops.push({ op: 'setFdb', peer: p });
    if (haveNeigh.get(p.ip) !== p.mac) ops.push({ op: 'setNeighbor', peer: p });
  }
  return ops;
}
