import { InvalidSandboxInputError } from './errors.js';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/** True for a dotted-quad IPv4 address. */
export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

/** Validates an IPv4 address and returns it. */
export function parseIpv4(s: string): string {
  if (!isIpv4(s)) throw new InvalidSandboxInputError(`invalid IPv4 address ${JSON.stringify(s)}: expected a.b.c.d`);
  return s;
}

/** Parses a.b.c.d/len. */
export function parseCidr(s: string): { ip: string; prefix: number } {
  const [ip, len, extra] = s.split('/');
  const prefix = Number(len);
  if (extra !== undefined || ip === undefined || !isIpv4(ip) || len === undefined || !/^\d{1,2}$/.test(len) || prefix > 32) {
    throw new InvalidSandboxInputError(`invalid CIDR ${JSON.stringify(s)}: expected a.b.c.d/len with len 0-32`);
  }
  return { ip, prefix };
}

/** IPv4 as a 32-bit unsigned number. */
export function ipv4ToInt(ip: string): number {
  return parseIpv4(ip).split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** 32-bit unsigned number as dotted quad. */
export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** True when `ip` lies inside `cidr`. */
export function cidrContains(cidr: string, ip: string): boolean {
  const { ip: base, prefix } = parseCidr(cidr);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((ipv4ToInt(base) & mask) >>> 0) === ((ipv4ToInt(ip) & mask) >>> 0);
}

/** 4 network-order bytes. */
export function ipv4ToBuffer(ip: string): Buffer {
  return Buffer.from(parseIpv4(ip).split('.').map(Number));
}

/** Dotted quad from 4 bytes. */
export function bufferToIpv4(b: Buffer): string {
  return [...b.subarray(0, 4)].join('.');
}

/** Validates a MAC (aa:bb:cc:dd:ee:ff) and returns its 6 bytes. */
export function parseMac(mac: string): Buffer {
  if (!MAC.test(mac)) throw new InvalidSandboxInputError(`invalid MAC address ${JSON.stringify(mac)}: expected six hex pairs like 02:42:0a:00:00:02`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** aa:bb:... from 6 bytes, lower case. */
export function formatMac(b: Buffer): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Docker's MAC for an overlay endpoint: 02:42 followed by the IPv4 bytes, so it is derived, not stored. */
export function macForIpv4(ip: string): string {
  return formatMac(Buffer.concat([Buffer.from([0x02, 0x42]), ipv4ToBuffer(ip)]));
}
