import ipaddr from 'ipaddr.js';
import { isIpv4 } from '../sandbox/addresses.js';
import { isIpv6Address } from '../sandbox/addresses6.js';
import { canonicalIpv6 } from '../model/ipv6.js';

/** The IP family of a node's underlay (the address its agent advertises and VXLAN leaves from). */
export type UnderlayFamily = 'ipv4' | 'ipv6';

/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD = 50;
/** The same over IPv6: its fixed header is 40 bytes, 20 more than IPv4's. */
export const VXLAN_OVERHEAD6 = 70;

// v6 ranges (ipaddr.js names) a VTEP cannot be: link-local needs a zone (and VXLAN takes none), loopback and
// the unspecified address reach no other host, multicast is no source, and a v4-mapped address is v4 in disguise.
const UNUSABLE6: Record<string, string> = {
  unspecified: 'the unspecified address',
  loopback: 'the loopback address',
  linkLocal: 'a link-local address (fe80::/10 needs an interface zone, which VXLAN cannot carry)',
  multicast: 'a multicast address',
  ipv4Mapped: 'a v4-mapped address (give the IPv4 address itself)',
};

/** Why `ip` cannot be a node's underlay address, or undefined when it can (any v4, or a v6 unicast). */
export function underlayAddressProblem(ip: string): string | undefined {
  if (isIpv4(ip)) return undefined;
  if (!isIpv6Address(ip)) return `${JSON.stringify(ip)} is not an IPv4 or IPv6 address`;
  const what = UNUSABLE6[ipaddr.IPv6.parse(ip).range()];
  return what === undefined ? undefined : `${ip} is ${what}: give a unicast address other hosts reach this one at`;
}

/** The family of a (valid) underlay address. */
export function underlayFamily(ip: string): UnderlayFamily {
  return isIpv4(ip) ? 'ipv4' : 'ipv6';
}

/** The address in the text the kernel reads back (RFC 5952 for v6), so stored and observed addresses compare equal. */
export function canonicalUnderlay(ip: string): string {
  return isIpv4(ip) ? ip : canonicalIpv6(ip);
}

/** What VXLAN takes off the underlay MTU when this host's VTEP is `localVtep` (absent: v4, as before). */
export function vxlanOverhead(localVtep: string | undefined): number {
  return localVtep !== undefined && underlayFamily(localVtep) === 'ipv6' ? VXLAN_OVERHEAD6 : VXLAN_OVERHEAD;
}

/** A node would join a cluster whose live nodes advertise underlay addresses of the other family. */
export class UnderlayFamilyError extends Error {
  readonly code = 'UNDERLAY_FAMILY_MIXED';
  constructor(mine: string, other: { id: string; underlayIp: string }) {
    const fam = (ip: string) => (underlayFamily(ip) === 'ipv6' ? 'IPv6' : 'IPv4');
    super(
      `--advertise-addr ${mine} is ${fam(mine)} but node ${other.id} advertises ${other.underlayIp} (${fam(other.underlayIp)}): ` +
        `one VXLAN device speaks one family, so meshnet does not mix underlay families in a cluster; give this agent an ${fam(other.underlayIp)} --advertise-addr`,
    );
    this.name = 'UnderlayFamilyError';
  }
}

/**
 * Refuses (UnderlayFamilyError) a node whose underlay `mine` is not of the family every other live node has:
 * caught at start, a misconfigured node never gets to break the overlays of the nodes its tasks would share.
 */
export function checkUnderlayFamily(mine: string, self: string, nodes: readonly { id: string; underlayIp: string }[]): void {
  const other = nodes.find((n) => n.id !== self && underlayFamily(n.underlayIp) !== underlayFamily(mine));
  if (other) throw new UnderlayFamilyError(mine, other);
}
