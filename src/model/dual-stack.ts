import { checkOverlaySubnet6, checkSubnet6Free, chooseSubnet6, gateway6Of, ipv6Twin } from './ipv6.js';
import type { NetworkRecord } from './records.js';

// Which records carry IPv6 and with what: the model's dual-stack decisions, pure. A network is dual stack when it
// holds subnet6; everything on it (gateway, VIPs, task addresses, ingress sandboxes) gets the v6 twin of its v4
// address. Absent fields mean v4 only, so records of older agents keep their meaning.

/** The v6 fields of a new network: none unless asked for (--ipv6 or a v6 subnet). Throws on a bad or taken v6 subnet. */
export function networkIpv6Fields(
  input: { name: string; ipv6?: boolean | undefined; subnet6?: string | undefined },
  taken: Record<string, string>,
): Pick<NetworkRecord, 'subnet6' | 'gateway6'> {
  if (!input.ipv6 && input.subnet6 === undefined) return {};
  if (input.subnet6 !== undefined) {
    checkOverlaySubnet6(input.subnet6);
    checkSubnet6Free(input.subnet6, taken);
  }
  const subnet6 = input.subnet6 ?? chooseSubnet6(input.name, taken);
  return { subnet6, gateway6: gateway6Of(subnet6) };
}

/** True when the network carries IPv6. */
export function isDualStack(net: Pick<NetworkRecord, 'subnet6'> | undefined): boolean {
  return net?.subnet6 !== undefined;
}

/** The v6 address of a v4 address on `net`, or undefined when the network is v4 only. */
export function ipv6On(net: Pick<NetworkRecord, 'subnet' | 'subnet6'>, ip4: string): string | undefined {
  return net.subnet6 === undefined ? undefined : ipv6Twin(net.subnet, net.subnet6, ip4);
}

/** A stored address entry's v6 address: the stored one, else derived (entries written before the network went dual stack). */
export function addressIpv6(net: Pick<NetworkRecord, 'subnet' | 'subnet6'> | undefined, address: { ip: string; ip6?: string | undefined }): string | undefined {
  if (net === undefined || net.subnet6 === undefined) return undefined;
  return address.ip6 ?? ipv6On(net, address.ip);
}

/** The `ip6` field for a task address on `net` (empty on v4-only networks). */
export function taskAddressIpv6(net: Pick<NetworkRecord, 'subnet' | 'subnet6'>, ip4: string): { ip6?: string } {
  const ip6 = ipv6On(net, ip4);
  return ip6 === undefined ? {} : { ip6 };
}

/** A service's v6 VIPs: the twin of each v4 VIP on a dual-stack network; undefined when none is. */
export function serviceVips6(vips: Record<string, string>, networks: ReadonlyMap<string, Pick<NetworkRecord, 'subnet' | 'subnet6'>>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [name, ip] of Object.entries(vips)) {
    const net = networks.get(name);
    const ip6 = net ? ipv6On(net, ip) : undefined;
    if (ip6 !== undefined) out[name] = ip6;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The ingress network made dual stack, when a service publishing through it sits on a dual-stack network and the
 * ingress is still v4 only; undefined when nothing is to change (so v4-only clusters never get a v6 ingress).
 */
export function ingressUpgrade(ingress: NetworkRecord, attached: readonly (NetworkRecord | undefined)[], taken: Record<string, string>): NetworkRecord | undefined {
  if (isDualStack(ingress) || !attached.some((n) => n !== undefined && !n.ingress && isDualStack(n))) return undefined;
  return { ...ingress, ...networkIpv6Fields({ name: ingress.name, ipv6: true }, taken) };
}

/** `{ ip6 }` when there is a v6 address, else nothing: spread into endpoint objects so v4-only ones stay as they were. */
export function v6Field(ip6: string | undefined): { ip6?: string } {
  return ip6 === undefined ? {} : { ip6 };
}
