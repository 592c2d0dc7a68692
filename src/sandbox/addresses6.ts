import ipaddr from 'ipaddr.js';
import { InvalidSandboxInputError } from './errors.js';

// IPv6 text <-> the 16 network-order bytes rtnetlink carries. ipaddr.js parses every shorthand and prints RFC 5952
// text, so addresses read back from the kernel compare equal to the canonical text the model stores.

/** True for IPv6 address text (no zone, not IPv4). */
export function isIpv6Address(s: string): boolean {
  return ipaddr.IPv6.isValid(s) && !ipaddr.IPv4.isValid(s) && !s.includes('%');
}

/** Validates an IPv6 address and returns its 16 bytes. */
export function ipv6ToBuffer(ip: string): Buffer {
  if (!isIpv6Address(ip)) throw new InvalidSandboxInputError(`invalid IPv6 address ${JSON.stringify(ip)}: expected text like fd00::1`);
  return Buffer.from(ipaddr.IPv6.parse(ip).toByteArray());
}

/** Canonical (RFC 5952) text from 16 bytes. */
export function bufferToIpv6(b: Buffer): string {
  return ipaddr.fromByteArray([...b.subarray(0, 16)]).toString();
}

/** Parses addr/len (len 0-128) into canonical address text and prefix length. */
export function parseCidr6(s: string): { ip: string; prefix: number } {
  const [ip, len, extra] = s.split('/');
  const prefix = Number(len);
  if (extra !== undefined || ip === undefined || !isIpv6Address(ip) || len === undefined || !/^\d{1,3}$/.test(len) || prefix > 128) {
    throw new InvalidSandboxInputError(`invalid IPv6 CIDR ${JSON.stringify(s)}: expected addr/len with len 0-128, like fd00::1/64`);
  }
  return { ip: ipaddr.IPv6.parse(ip).toString(), prefix };
}
