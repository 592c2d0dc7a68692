import ipaddr from 'ipaddr.js';

export { ipv6PtrName } from '../model/ipv6.js';

/** The 16 bytes of an AAAA record's data. */
export function ipv6Bytes(ip: string): Buffer {
  return Buffer.from(ipaddr.IPv6.parse(ip).toByteArray());
}
