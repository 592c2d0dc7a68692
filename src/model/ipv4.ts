// IPv4 arithmetic on unsigned 32-bit integers: enough for subnets, host addresses and Docker-style MACs.

/** An IPv4 prefix as integers. */
export interface Ipv4Subnet {
  /** Network address (host bits zero). */
  network: number;
  prefixLength: number;
}

/** Parses dotted-quad IPv4; returns undefined when malformed. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const byte = Number(part);
    if (byte > 255) return undefined;
    value = value * 256 + byte;
  }
  return value;
}

/** Formats an unsigned 32-bit integer as dotted-quad. */
export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Parses `a.b.c.d/len` with host bits zero; returns undefined when malformed. */
export function parseSubnet(text: string): Ipv4Subnet | undefined {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!match) return undefined;
  const address = parseIpv4(match[1]!);
  const prefixLength = Number(match[2]);
  if (address === undefined || prefixLength > 32) return undefined;
  if (((address & maskOf(prefixLength)) >>> 0) !== address) return undefined;
  return { network: address, prefixLength };
}

/** Formats a subnet as `a.b.c.d/len`. */
export function formatSubnet(subnet: Ipv4Subnet): string {
  return `${formatIpv4(subnet.network)}/${subnet.prefixLength}`;
}

/** Number of addresses in the subnet. */
export function subnetSize(subnet: Ipv4Subnet): number {
  return 2 ** (32 - subnet.prefixLength);
}

/** Last address of the subnet (the broadcast address). */
export function lastAddress(subnet: Ipv4Subnet): number {
  return subnet.network + subnetSize(subnet) - 1;
}

/** True when `address` lies in `subnet`. */
export function subnetContains(subnet: Ipv4Subnet, address: number): boolean {
  return address >= subnet.network && address <= lastAddress(subnet);
}

/** True when the two subnets share any address. */
export function subnetsOverlap(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  return a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

/** Docker's MAC for a container address: 02:42 followed by the four address bytes. */
export function macFromIpv4(ip: string): string {
  const value = parseIpv4(ip);
  if (value === undefined) throw new TypeError(`not an IPv4 address: ${ip}`);
  const bytes = [0x02, 0x42, value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
