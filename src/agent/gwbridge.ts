import { Rtnl, type AddressInfo } from '../sandbox/rtnl.js';
import { cidrContains, macForIpv4, parseCidr } from '../sandbox/addresses.js';
import type { NodeSettings } from './node-plan.js';
import { ensureLegV6, type GwLeg6 } from './gwbridge-v6.js';

/** Pure: the first address among `addresses` that lies in the gwbridge subnet. */
export function gwAddressAmong(addresses: readonly AddressInfo[], subnet: string): string | undefined {
  for (const a of addresses) {
    const ip = a.cidr.split('/')[0]!;
    if (cidrContains(subnet, ip)) return ip;
  }
  return undefined;
}

/** A sandbox's leg on the node's gwbridge. */
export interface GwLeg {
  sandbox: string;
  ifname: string;
  hostIf: string;
  ip: string;
  mac: string;
  /** Route everything not on another interface via the gwbridge. */
  defaultRoute: boolean;
  /**
   * A bridge port isolated from the other isolated ports: task legs exchange no frame with each other
   * (IPv6, ARP and raw frames included, which the iptables isolation cannot see), only with the host
   * and the ingress sandbox, whose leg is not isolated.
   */
  isolated: boolean;
  /** Its v6 side (the ingress sandbox's leg once the ingress network is dual stack); absent: v4 only. */
  v6?: GwLeg6;
}

/**
 * The host bridge (Docker's docker_gwbridge): the way into the host for the ingress sandbox and the way
 * out for tasks. Adapter only: it makes what it is told, idempotently.
 */
export class GwBridge {
  constructor(
    private readonly host: Rtnl,
    private readonly gw: NodeSettings['gwbridge'],
  ) {}

  /** Creates the bridge with the gateway address, up (its sysctls come from the node plan). */
  async ensureBridge(): Promise<void> {
    const { prefix } = parseCidr(this.gw.subnet);
    // A fixed MAC: otherwise the bridge takes its lowest leg's and changes it as legs come and go, and the
    // ingress sandbox's cached gateway MAC would send published-port replies to a task's leg.
    if (!(await this.host.link(this.gw.name))) await this.host.createBridge(this.gw.name, { mac: macForIpv4(this.gw.gateway) });
    await this.host.addAddress(this.gw.name, `${this.gw.gateway}/${prefix}`);
    await this.host.setLink(this.gw.name, { up: true });
  }

  /** host-side names of the legs on the bridge now. */
  async legs(): Promise<string[]> {
    const br = await this.host.link(this.gw.name);
    if (!br) return [];
    return (await this.host.links()).filter((l) => l.master === br.index && l.kind === 'veth').map((l) => l.name);
  }

  /** The gwbridge address a sandbox has on `ifname`, if any. */
  async addressIn(sandbox: string, ifname: string): Promise<string | undefined> {
    const r = Rtnl.open(sandbox);
    try {
      const found = (await r.addresses()).find((a) => a.link === ifname);
      return found?.cidr.split('/')[0];
    } finally {
      r.close();
    }
  }

  /**
   * The gwbridge address a sandbox holds on whichever interface, found by subnet: interface names
   * are positional and shift when a task leaves a network, the address must not.
   */
  async bridgeAddressIn(sandbox: string): Promise<string | undefined> {
    const r = Rtnl.open(sandbox);
    try {
      return gwAddressAmong(await r.addresses(), this.gw.subnet);
    } finally {
      r.close();
    }
  }

  /** Creates a leg unless it already exists whole; a half-made one is replaced. */
  async ensureLeg(leg: GwLeg): Promise<boolean> {
    const { prefix } = parseCidr(this.gw.subnet);
    const existing = await this.host.link(leg.hostIf);
    if (existing && (await this.addressIn(leg.sandbox, leg.ifname)) === leg.ip) {
      // A leg made by an older meshnet may lack the isolation flag.
      if ((await this.host.bridgePortIsolated(leg.hostIf)) === leg.isolated) return this.ensureV6(leg);
      await this.host.setBridgePort(leg.hostIf, { isolated: leg.isolated });
      await this.ensureV6(leg);
      return true;
    }
    if (existing) await this.host.deleteLink(leg.hostIf);
    await this.host.createVeth(leg.hostIf, leg.ifname, { peerNetns: leg.sandbox, peerMac: leg.mac });
    try {
      await this.host.setLink(leg.hostIf, { master: this.gw.name });
      // Isolated before it comes up, so no frame crosses between task legs even for a moment.
      await this.host.setBridgePort(leg.hostIf, { isolated: leg.isolated });
      await this.host.setLink(leg.hostIf, { up: true });
      const sb = Rtnl.open(leg.sandbox);
      try {
        await sb.setLink('lo', { up: true });
        await sb.addAddress(leg.ifname, `${leg.ip}/${prefix}`);
        await sb.setLink(leg.ifname, { up: true });
        if (leg.defaultRoute) await sb.replaceRoute({ dst: 'default', gateway: this.gw.gateway, dev: leg.ifname });
      } finally {
        sb.close();
      }
    } catch (err) {
      await this.host.deleteLink(leg.hostIf);
      throw err;
    }
    // After the v4 leg stands: a host that refuses v6 (disable_ipv6) keeps its v4 published ports, and the
    // failing v6 side is retried on the next pass.
    await this.ensureV6(leg);
    return true;
  }

  /** A whole leg's v6 side, added when the leg has one and it is missing. */
  private async ensureV6(leg: GwLeg): Promise<boolean> {
    if (!leg.v6) return false;
    const sb = Rtnl.open(leg.sandbox);
    try {
      return await ensureLegV6(this.host, sb, this.gw.name, leg.ifname, leg.v6);
    } finally {
      sb.close();
    }
  }

  /** Removes a leg by its host-side name. */
  async removeLeg(hostIf: string): Promise<void> {
    await this.host.deleteLink(hostIf);
  }
}
