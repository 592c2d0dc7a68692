import type * as NL from 'netlink';
import { bufferToIpv4, ipv4ToBuffer } from './addresses.js';
import { bufferToIpv6, ipv6ToBuffer, isIpv6Address } from './addresses6.js';

// A VTEP (VXLAN tunnel endpoint) address as rtnetlink carries it, v4 or v6 underlay alike. Pure.

/** NDA_DST of an FDB entry: 4 bytes for v4, 16 for v6 (the kernel tells the family by the length). */
export function vtepBuffer(ip: string): Buffer {
  return isIpv6Address(ip) ? ipv6ToBuffer(ip) : ipv4ToBuffer(ip);
}

/** An FDB entry's NDA_DST back as text (v6 in RFC 5952 form, so it compares equal to the desired VTEP). */
export function vtepFromBuffer(b: Buffer): string {
  return b.length === 16 ? bufferToIpv6(b) : bufferToIpv4(b);
}

/**
 * A VXLAN device's underlay source: IFLA_VXLAN_LOCAL for v4, IFLA_VXLAN_LOCAL6 for v6. A v6 local makes the
 * kernel open the device's UDP socket on IPv6 (VXLAN over a v6 underlay), and then take only v6 FDB destinations.
 */
/** A VXLAN device's underlay source as the kernel reports it (undefined: none set, the route picks it). */
export function vxlanLocalFromAttrs(vx: Pick<NL.ifla.Vxlan, 'local' | 'local6'>): string | undefined {
  const b = vx.local6 && vx.local6.length === 16 && vx.local6.some((x) => x !== 0) ? vx.local6 : vx.local && vx.local.length === 4 && vx.local.some((x) => x !== 0) ? vx.local : undefined;
  return b ? vtepFromBuffer(b) : undefined;
}

export function vxlanLocalAttr(ip: string): Pick<NL.ifla.Vxlan, 'local' | 'local6'> {
  return isIpv6Address(ip) ? { local6: ipv6ToBuffer(ip) } : { local: ipv4ToBuffer(ip) };
}
