import { randomBytes } from 'node:crypto';
import type { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import type { OverlayInput } from './overlay-spec.js';
import { desiredOverlayState, type EndpointState, type OverlayState } from './overlay-state.js';
import { type ObservedOverlay, type OverlayOp, planOverlay } from './overlay-plan.js';
import { applyOverlayV6 } from './overlay-v6-driver.js';
import type { OverlayV6Op } from './overlay-v6-state.js';

export interface OverlayDriverOptions {
  /** Where overlay namespaces are bind-mounted. */
  netnsDir: Pick<NetnsDir, 'path' | 'exists' | 'create'>;
  /** The host namespace whose underlay carries VXLAN (null: the namespace this process runs in). */
  hostNetns: string | null;
  /** Required when hostNetns is null: the operator declared this namespace the host. */
  allowHostNamespace?: boolean;
}

/** The result of one apply. */
export interface OverlayApplyResult {
  /** v4 operations, then the v6 writes of a dual-stack network. */
  ops: (OverlayOp | OverlayV6Op)[];
  netns: string;
}

/** The main routing table, where an endpoint's default route lives. */
const MAIN_TABLE = 254;

const withRtnl = async <T>(netns: string, fn: (r: Rtnl) => Promise<T>): Promise<T> => {
  const r = Rtnl.open(netns);
  try {
    return await fn(r);
  } finally {
    r.close();
  }
};

/**
 * The VXLAN data plane adapter: reads what the kernel has for one overlay network, plans the
 * difference with the pure planner and applies it. A second apply of the same input does nothing.
 */
export class OverlayDriver {
  constructor(private readonly opts: OverlayDriverOptions) {}

  /** Makes the kernel match `input` for its network; returns the operations it performed. */
  async apply(input: OverlayInput): Promise<OverlayApplyResult> {
    const desired = desiredOverlayState(input); // validates before anything is touched
    const observed = await this.observe(desired);
    const ops = planOverlay(observed, desired);
    const netns = this.opts.netnsDir.path(desired.netns);
    let ov: Rtnl | undefined;
    try {
      for (const op of ops) {
        if (op.op === 'createNetns') {
          this.opts.netnsDir.create(desired.netns);
          ov = Rtnl.open(netns);
          await ov.setLink('lo', { up: true });
          continue;
        }
        ov ??= Rtnl.open(netns);
        await this.run(op, ov, netns);
      }
    } finally {
      ov?.close();
    }
    // After the v4 ops: a re-attached endpoint has lost its v6 address, which the read below then sees.
    if (desired.ipv6) return { ops: [...ops, ...(await applyOverlayV6(netns, desired.ipv6))], netns };
    return { ops, netns };
  }

  /** Reads the kernel state relevant to `desired`. Throws (touching nothing) when an endpoint's sandbox is missing. */
  async observe(desired: OverlayState): Promise<ObservedOverlay> {
    const sandboxSides: ObservedOverlay['sandboxSides'] = {};
    for (const e of desired.endpoints) sandboxSides[e.hostIf] = await this.observeSandboxSide(e);
    const dir = this.opts.netnsDir;
    if (!dir.exists(desired.netns)) {
      return { netnsExists: false, hostIfs: [], sandboxSides, neighbors: [], fdb: [] };
    }
    return withRtnl(dir.path(desired.netns), async (r) => {
      const links = await r.links();
      const addrs = await r.addresses();
      const br = links.find((l) => l.name === 'br0');
      const vx = links.find((l) => l.name === 'vxlan0');
      const obs: ObservedOverlay = {
        netnsExists: true,
        hostIfs: links
          .filter((l) => l.kind === 'veth' && /^ve[0-9a-f]{11}$/.test(l.name))
          .map((l) => ({ name: l.name, onBridge: !!br && l.master === br.index, up: l.up })),
        sandboxSides,
        neighbors: vx ? (await r.neighbors('vxlan0')).filter((n) => n.permanent).map(({ ip, mac }) => ({ ip, mac })) : [],
        fdb: vx
          ? (await r.fdb('vxlan0')).filter((f) => f.dst && f.permanent).map((f) => ({ mac: f.mac, dst: f.dst! }))
          : [],
      };
      if (br) obs.bridge = { cidrs: addrs.filter((a) => a.link === 'br0').map((a) => a.cidr), mtu: br.mtu, up: br.up };
      if (vx?.vxlan) obs.vxlan = { ...vx.vxlan, mtu: vx.mtu, up: vx.up, onBridge: !!br && vx.master === br.index };
      return obs;
    });
  }

  private async observeSandboxSide(e: EndpointState): Promise<ObservedOverlay['sandboxSides'][string]> {
    return withRtnl(e.sandbox, async (r) => {
      const link = await r.link(e.ifname);
      if (!link) return { present: false, cidrs: [] };
      const cidrs = (await r.addresses()).filter((a) => a.link === e.ifname).map((a) => a.cidr);
      const side: ObservedOverlay['sandboxSides'][string] = { present: true, cidrs, mtu: link.mtu, up: link.up };
      if (link.mac) side.mac = link.mac;
      if (e.gateway) {
        const route = (await r.routes({ table: MAIN_TABLE })).find((x) => x.dst === 'default' && x.oif === link.index && x.gateway);
        if (route?.gateway) side.gateway = route.gateway;
      }
      return side;
    });
  }

  private async run(op: Exclude<OverlayOp, { op: 'createNetns' }>, ov: Rtnl, netns: string): Promise<void> {
    switch (op.op) {
      case 'createBridge':
      case 'fixBridge':
        // A bridge without a MAC of its own takes its lowest port's, and changes it when a port joins or
        // leaves: neighbours that cached the gateway's MAC then send to the wrong port. A MAC set once never
        // moves; random (locally administered, as Docker's), since every host's br0 has the same gateway address.
        if (op.op === 'createBridge') await ov.createBridge('br0', { mtu: op.bridge.mtu, mac: randomLocalMac() });
        else for (const c of op.removeCidrs) await ov.deleteAddress('br0', c);
        await ov.addAddress('br0', op.bridge.cidr);
        await ov.setLink('br0', { mtu: op.bridge.mtu, up: true });
        return;
      case 'deleteVxlan':
        await ov.deleteLink('vxlan0');
        return;
      case 'createVxlan':
        await this.createVxlan(op.vxlan, netns);
        await ov.setLink('vxlan0', { master: 'br0', up: true });
        return;
      case 'fixVxlan':
        return ov.setLink('vxlan0', { mtu: op.vxlan.mtu, master: 'br0', up: true });
      case 'attachEndpoint':
        return this.attach(op.endpoint, ov);
      case 'detachEndpoint':
        await ov.deleteLink(op.hostIf);
        return;
      case 'setFdb':
        return ov.replaceFdb('vxlan0', op.peer.mac, op.peer.vtep);
      case 'setNeighbor':
        return ov.replaceNeighbor('vxlan0', op.peer.ip, op.peer.mac);
      case 'deleteNeighbor':
        return ov.deleteNeighbor('vxlan0', op.ip);
      case 'deleteFdb':
        return ov.deleteFdb('vxlan0', op.mac, op.dst);
    }
  }

  /**
   * VXLAN devices are created in the host namespace, so their UDP socket lives on the underlay,
   * then moved (and renamed vxlan0) into the overlay namespace, as Docker's overlay driver does.
   */
  private async createVxlan(vx: OverlayState['vxlan'], netns: string): Promise<void> {
    const temp = `mnvx${vx.vni}`;
    const host = Rtnl.open(this.opts.hostNetns, { allowHostNamespace: this.opts.allowHostNamespace ?? false });
    try {
      await host.deleteLink(temp); // a leftover of an interrupted apply
      const spec: Parameters<Rtnl['createVxlan']>[0] = { name: temp, vni: vx.vni, port: vx.port, learning: vx.learning, proxy: vx.proxy, mtu: vx.mtu };
      if (vx.local) spec.local = vx.local;
      await host.createVxlan(spec);
      try {
        await host.setLink(temp, { netns, rename: 'vxlan0' });
      } catch (err) {
        await host.deleteLink(temp);
        throw err;
      }
    } finally {
      host.close();
    }
  }

  /** Creates the veth pair for an endpoint; on any failure the pair is removed again. */
  private async attach(e: EndpointState, ov: Rtnl): Promise<void> {
    await ov.createVeth(e.hostIf, e.ifname, { peerNetns: e.sandbox, mtu: e.mtu, peerMac: e.mac });
    try {
      await ov.setLink(e.hostIf, { master: 'br0', up: true });
      await withRtnl(e.sandbox, async (sb) => {
        await sb.setLink('lo', { up: true });
        await sb.addAddress(e.ifname, e.cidr);
        await sb.setLink(e.ifname, { up: true });
        if (e.gateway) await sb.replaceRoute({ dst: 'default', gateway: e.gateway, dev: e.ifname });
      });
    } catch (err) {
      await ov.deleteLink(e.hostIf);
      throw err;
    }
  }
}

/** A random unicast, locally administered MAC address. */
function randomLocalMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
