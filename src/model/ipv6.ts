import ipaddr from 'ipaddr.js';
import { createHash } from 'node:crypto';
import { InvalidSpecError, PoolExhaustedError, SubnetOverlapError } from './model-errors.js';
import { parseIpv4, parseSubnet } from './ipv4.js';

// IPv6 addresses of dual-stack networks. Parsing and formatting go through ipaddr.js (RFC 5952 text, every
// shorthand accepted) rather than hand-written code. A v6 address is never allocated on its own: it is the v4
// address's offset in the v4 subnet, placed in the network's v6 /64. The v4 address is claimed by CAS in the store,
// so the v6 one is unique and quarantined with it, and every agent derives the same address without a second claim.

/** The ULA /48 meshnet carves v6 overlay subnets from ("mesh n" in its global id). */
export const OVERLAY_POOL6 = 'fd6d:6573:686e::/48';
/** Largest prefix length a v6 overlay subnet may have: every v4 host offset must fit in its host part. */
export const MAX_PREFIX6 = 96;

/** A parsed v6 prefix. */
export interface Ipv6Subnet {
  /** The 16 bytes of the network address (host bits zero). */
  bytes: number[];
  prefixLength: number;
}

/** True for any IPv6 address text (not IPv4). */
export function isIpv6(text: string): boolean {
  return ipaddr.IPv6.isValid(text) && !ipaddr.IPv4.isValid(text) && !text.includes('%');
}

/** The canonical (RFC 5952) text of a v6 address; throws InvalidSpecError when it is not one. */
export function canonicalIpv6(text: string): string {
  if (!isIpv6(text)) throw new InvalidSpecError(`${JSON.stringify(text)} is not an IPv6 address like fd00::1`);
  return ipaddr.IPv6.parse(text).toString();
}

/** True when `text` looks like a v6 CIDR (the CLI uses this to sort --subnet values into v4 and v6). */
export function looksLikeCidr6(text: string): boolean {
  return text.includes(':');
}

/** Parses `addr/len` with host bits zero; undefined when malformed. */
export function parseSubnet6(text: string): Ipv6Subnet | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || !isIpv6(text.slice(0, slash)) || !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  const prefixLength = Number(text.slice(slash + 1));
  if (prefixLength > 128) return undefined;
  const bytes = ipaddr.IPv6.parse(text.slice(0, slash)).toByteArray();
  const masked = maskBytes(bytes, prefixLength);
  if (masked.some((b, i) => b !== bytes[i])) return undefined;
  return { bytes, prefixLength };
}

/** Formats a v6 subnet as canonical `addr/len`. */
export function formatSubnet6(subnet: Ipv6Subnet): string {
  return `${ipaddr.fromByteArray(subnet.bytes).toString()}/${subnet.prefixLength}`;
}

function maskBytes(bytes: readonly number[], prefixLength: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefixLength - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

/** True when the two v6 subnets share any address. */
export function subnets6Overlap(a: Ipv6Subnet, b: Ipv6Subnet): boolean {
  const shorter = Math.min(a.prefixLength, b.prefixLength);
  const ma = maskBytes(a.bytes, shorter);
  const mb = maskBytes(b.bytes, shorter);
  return ma.every((x, i) => x === mb[i]);
}

/** True when `ip` lies in the v6 `subnet` (CIDR text). */
export function subnet6Contains(subnet: string, ip: string): boolean {
  const parsed = parseSubnet6(subnet);
  if (parsed === undefined || !isIpv6(ip)) return false;
  return ipaddr.IPv6.parse(ip).match(ipaddr.fromByteArray(parsed.bytes) as ipaddr.IPv6, parsed.prefixLength);
}

function mustParseSubnet6(text: string): Ipv6Subnet {
  const subnet = parseSubnet6(text);
  if (subnet === undefined) throw new InvalidSpecError(`${JSON.stringify(text)} is not an IPv6 CIDR like fd00:1::/64 (host bits zero)`);
  return subnet;
}

/** Validates a user-chosen v6 overlay subnet: large enough to mirror every v4 host offset. */
export function checkOverlaySubnet6(subnet: string): void {
  const wanted = mustParseSubnet6(subnet);
  if (wanted.prefixLength > MAX_PREFIX6) throw new InvalidSpecError(`IPv6 subnet ${subnet} is too small: use /${MAX_PREFIX6} or larger (a /64 is usual)`);
}

/** Throws SubnetOverlapError when the v6 `subnet` overlaps a v6 entry of `taken` (cidr → owner); v4 entries are skipped. */
export function checkSubnet6Free(subnet: string, taken: Record<string, string>): void {
  const wanted = mustParseSubnet6(subnet);
  for (const [cidr, owner] of Object.entries(taken)) {
    const other = parseSubnet6(cidr);
    if (other !== undefined && subnets6Overlap(wanted, other)) throw new SubnetOverlapError(subnet, cidr, `network ${owner}`);
  }
}

/**
 * A free /64 of the ULA pool for `network`: the first try is derived from the network's name (so the same name
 * gets the same prefix on every cluster that has it free), then the next free subnet id after it.
 */
export function chooseSubnet6(network: string, taken: Record<string, string>): string {
  const pool = mustParseSubnet6(OVERLAY_POOL6);
  const used = Object.keys(taken)
    .map((c) => parseSubnet6(c))
    .filter((s): s is Ipv6Subnet => s !== undefined);
  const start = createHash('sha256').update(network).digest().readUInt16BE(0);
  for (let i = 0; i < 0x10000; i++) {
    const id = (start + i) & 0xffff;
    const bytes = [...pool.bytes];
    bytes[6] = id >> 8;
    bytes[7] = id & 0xff;
    const candidate: Ipv6Subnet = { bytes, prefixLength: 64 };
    if (!used.some((u) => subnets6Overlap(candidate, u))) return formatSubnet6(candidate);
  }
  throw new PoolExhaustedError('subnet', `every /64 of ${OVERLAY_POOL6} is in use; give an explicit --subnet6`);
}

/** The address at host offset `offset` of a v6 subnet. */
export function ipv6AtOffset(subnet6: string, offset: number): string {
  const parsed = mustParseSubnet6(subnet6);
  const bytes = [...parsed.bytes];
  let carry = offset;
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const sum = bytes[i]! + (carry % 256);
    bytes[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** The v6 gateway of a v6 subnet: its first host address, as for v4. */
export function gateway6Of(subnet6: string): string {
  return ipv6AtOffset(subnet6, 1);
}

/**
 * The v6 twin of a v4 address of a dual-stack network: the same host offset in the v6 subnet
 * (10.0.1.7 in 10.0.1.0/24 → fd..::7 in fd..::/64).
 */
export function ipv6Twin(subnet4: string, subnet6: string, ip4: string): string {
  const net = parseSubnet(subnet4);
  const value = parseIpv4(ip4);
  if (net === undefined || value === undefined) throw new InvalidSpecError(`${ip4} in ${subnet4} is not an IPv4 address of an IPv4 subnet`);
  return ipv6AtOffset(subnet6, value - net.network);
}

/** The reverse-DNS name of a v6 address (nibbles under ip6.arpa, without the final dot). */
export function ipv6PtrName(ip: string): string {
  const hex = ipaddr.IPv6.parse(ip)
    .toByteArray()
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('');
  return `${[...hex].reverse().join('.')}.ip6.arpa`;
}
