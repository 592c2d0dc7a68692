import { ipv6Twin } from '../model/ipv6.js';
import type { Rtnl } from '../sandbox/rtnl.js';
import type { NodeSettings } from './node-plan.js';

// The gwbridge carries v6 only between the host and the ingress sandbox, and only once the ingress network is dual
// stack: it is how a published port reached on a host's v6 address gets into the sandbox. Like Docker's
// docker_gwbridge, its subnet is host-local, so every host may use the same one; it sits outside the overlay pool
// (fd6d:6573:686e::/48), so it never collides with a network's /64.

/** The gwbridge's v6 subnet on every host. */
export const GWBRIDGE_SUBNET6 = 'fd6d:6777:6272::/64';

/** The gwbridge's v6 addresses: the twins of its v4 gateway and sandbox address in GWBRIDGE_SUBNET6. */
export interface GwBridge6 {
  subnet6: string;
  gateway6: string;
  sbox6: string;
}

/** Twins already worked out, per settings object: every pass asks, and parsing v6 text each time was a tenth of a woken pass's plan. */
const twins = new WeakMap<object, { source: { subnet: string; gateway: string; sboxAddress: string }; value: GwBridge6 }>();

/** Pure: the v6 twins of a gwbridge's v4 gateway and ingress sandbox address. */
export function gwbridgeIpv6(gw: Pick<NodeSettings['gwbridge'], 'subnet' | 'gateway' | 'sboxAddress'>): GwBridge6 {
  const known = twins.get(gw);
  if (known && known.source.subnet === gw.subnet && known.source.gateway === gw.gateway && known.source.sboxAddress === gw.sboxAddress) return known.value;
  const value = { subnet6: GWBRIDGE_SUBNET6, gateway6: ipv6Twin(gw.subnet, GWBRIDGE_SUBNET6, gw.gateway), sbox6: ipv6Twin(gw.subnet, GWBRIDGE_SUBNET6, gw.sboxAddress) };
  twins.set(gw, { source: { subnet: gw.subnet, gateway: gw.gateway, sboxAddress: gw.sboxAddress }, value });
  return value;
}

/** What a dual-stack leg adds: its v6 address and the bridge's v6 gateway (its default v6 route). */
export interface GwLeg6 {
  ip6: string;
  gateway6: string;
}

/**
 * Gives a leg its v6 side: the bridge's v6 gateway address, the sandbox end's v6 address and a v6 default route via
 * the gateway. Idempotent; reads first so an unchanged leg is not rewritten. Returns whether anything changed.
 */
export async function ensureLegV6(host: Rtnl, sandbox: Rtnl, bridge: string, ifname: string, leg: GwLeg6): Promise<boolean> {
  const prefix = GWBRIDGE_SUBNET6.split('/')[1]!;
  let changed = false;
  const has = (list: { link: string; cidr: string }[], link: string, ip: string) => list.some((a) => a.link === link && a.cidr === `${ip}/${prefix}`);
  if (!has(await host.addresses6(), bridge, leg.gateway6)) {
    await host.replaceAddress6(bridge, `${leg.gateway6}/${prefix}`);
    changed = true;
  }
  if (!has(await sandbox.addresses6(), ifname, leg.ip6)) {
    await sandbox.replaceAddress6(ifname, `${leg.ip6}/${prefix}`);
    changed = true;
  }
  const route = (await sandbox.routes6()).find((r) => r.dst === 'default');
  if (route?.gateway !== leg.gateway6 || route.dev !== ifname) {
    await sandbox.replaceRoute6({ dst: 'default', gateway: leg.gateway6, dev: ifname });
    changed = true;
  }
  return changed;
}
