import { formatIpv4, formatSubnet, lastAddress, parseIpv4, parseSubnet, subnetsOverlap, type Ipv4Subnet } from './ipv4.js';
import { InvalidSpecError, PoolExhaustedError, SubnetOverlapError } from './model-errors.js';

// Pure allocation choices. The Cluster reads what is taken, asks these functions for a candidate and commits it
// with compare-and-swap; losing a race just means asking again with the new picture.

/** The address space overlay subnets are carved from. */
export const OVERLAY_POOL = '10.0.0.0/8';
/** The ingress network's subnet (as Docker's default ingress). */
export const INGRESS_SUBNET = '10.255.0.0/16';
/** Name of the ingress network. */
export const INGRESS_NETWORK = 'ingress';
/** Lowest VNI handed out (Docker starts at 4096 too). */
export const FIRST_VNI = 4096;
/** Highest VXLAN network identifier. */
export const MAX_VNI = 16_777_215;
/** Dynamic published port range (Swarm's). */
export const DYNAMIC_PORTS = { first: 30000, last: 32767 } as const;

function mustParseSubnet(text: string): Ipv4Subnet {
  const subnet = parseSubnet(text);
  if (subnet === undefined) throw new InvalidSpecError(`${JSON.stringify(text)} is not an IPv4 CIDR like 10.0.1.0/24`);
  return subnet;
}

/** Throws SubnetOverlapError when `subnet` overlaps any of `taken` (cidr → owner). */
export function checkSubnetFree(subnet: string, taken: Record<string, string>): void {
  const wanted = mustParseSubnet(subnet);
  for (const [cidr, owner] of Object.entries(taken)) {
    const other = parseSubnet(cidr);
    if (other !== undefined && subnetsOverlap(wanted, other)) throw new SubnetOverlapError(subnet, cidr, `network ${owner}`);
  }
}

/** Validates a user-chosen overlay subnet: usable size and outside the reserved ingress range. */
export function checkOverlaySubnet(subnet: string, ingress: boolean): void {
  const wanted = mustParseSubnet(subnet);
  if (wanted.prefixLength > 29) throw new InvalidSpecError(`subnet ${subnet} is too small: use /29 or larger so it holds a gateway, VIPs and tasks`);
  if (!ingress && subnetsOverlap(wanted, mustParseSubnet(INGRESS_SUBNET))) {
    throw new SubnetOverlapError(subnet, INGRESS_SUBNET, 'the reserved ingress range');
  }
}

/** The first free /24 of 10.0.0.0/8 outside 10.255.0.0/16 that overlaps nothing in `taken`. */
export function chooseSubnet(taken: Record<string, string>): string {
  const pool = mustParseSubnet(OVERLAY_POOL);
  const reserved = mustParseSubnet(INGRESS_SUBNET);
  const used = Object.keys(taken)
    .map((c) => parseSubnet(c))
    .filter((s): s is Ipv4Subnet => s !== undefined);
  for (let network = pool.network; network + 255 <= lastAddress(pool); network += 256) {
    const candidate: Ipv4Subnet = { network, prefixLength: 24 };
    if (subnetsOverlap(candidate, reserved)) continue;
    const clash = used.find((u) => subnetsOverlap(candidate, u));
    if (clash === undefined) return formatSubnet(candidate);
    // Jump past a large clashing subnet instead of probing each of its /24s.
    network = Math.max(network, lastAddress(clash) + 1 - 256);
  }
  throw new PoolExhaustedError('subnet', `every /24 of ${OVERLAY_POOL} outside ${INGRESS_SUBNET} is in use; remove networks or give an explicit subnet`);
}

/** The gateway of a subnet: its first host address. */
export function gatewayOf(subnet: string): string {
  return formatIpv4(mustParseSubnet(subnet).network + 1);
}

/** The lowest VNI ≥ 4096 not in `used`. */
export function chooseVni(used: ReadonlySet<number>): number {
  for (let vni = FIRST_VNI; vni <= MAX_VNI; vni++) if (!used.has(vni)) return vni;
  throw new PoolExhaustedError('vni', `all VNIs ${FIRST_VNI}-${MAX_VNI} are in use`);
}

/**
 * A free host address of `subnet` (never the network, broadcast or any address in `used`). The first attempt
 * takes the lowest free one, as Docker does; retries after a lost race pick among the lowest few at random so
 * concurrent allocators stop colliding on the same address.
 */
export function chooseAddress(subnet: string, used: ReadonlySet<string>, network: string, attempt = 0, random: () => number = Math.random): string {
  const parsed = mustParseSubnet(subnet);
  const spread = attempt === 0 ? 1 : 32;
  const candidates: string[] = [];
  for (let a = parsed.network + 1; a < lastAddress(parsed) && candidates.length < spread; a++) {
    const ip = formatIpv4(a);
    if (!used.has(ip)) candidates.push(ip);
  }
  if (candidates.length === 0) throw new PoolExhaustedError('ip', `subnet ${subnet} of network ${network} has no free address; remove tasks or services, or use a larger subnet`);
  return candidates[Math.floor(random() * candidates.length)]!;
}

/** A free port of the dynamic range; retries spread like chooseAddress. */
export function choosePort(used: ReadonlySet<number>, attempt = 0, random: () => number = Math.random): number {
  const spread = attempt === 0 ? 1 : 32;
  const candidates: number[] = [];
  for (let p = DYNAMIC_PORTS.first; p <= DYNAMIC_PORTS.last && candidates.length < spread; p++) if (!used.has(p)) candidates.push(p);
  if (candidates.length === 0) throw new PoolExhaustedError('port', `every port ${DYNAMIC_PORTS.first}-${DYNAMIC_PORTS.last} is published; give an explicit port or remove services`);
  return candidates[Math.floor(random() * candidates.length)]!;
}

/** True when `ip` is a host address of `subnet`. */
export function isHostAddress(subnet: string, ip: string): boolean {
  const parsed = mustParseSubnet(subnet);
  const value = parseIpv4(ip);
  return value !== undefined && value > parsed.network && value < lastAddress(parsed);
}
