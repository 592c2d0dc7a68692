import koffi from 'koffi';
import { isIPv4 } from 'node:net';
import { ipv6ToBuffer } from './addresses6.js';

/**
 * The socket calls of libc, for sockets Node cannot make itself: one made synchronously while the
 * thread is switched into another namespace (a listener, the VTEP probes' ping socket), or a kind
 * Node has no API for (ICMP, netlink). Each returns -1 and sets errno (koffi.errno()) on failure.
 */
const libc = koffi.load('libc.so.6');

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_NONBLOCK = 0o4000;
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
/** The netlink family of netfilter (nf_tables among it). */
export const NETLINK_NETFILTER = 12;
export const SOCK_CLOEXEC = 0o2000000;

export const socket = libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number;
export const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)') as (
  fd: number,
  level: number,
  name: number,
  value: Buffer,
  len: number,
) => number;
export const bind = libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number;
export const listen = libc.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number;
export const sendto = libc.func('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)') as (
  fd: number,
  buf: Buffer,
  len: number,
  flags: number,
  addr: Buffer,
  alen: number,
) => number;
export const recvfrom = libc.func('long recvfrom(int fd, _Out_ void *buf, size_t len, int flags, _Out_ void *addr, _Inout_ uint32_t *alen)') as (
  fd: number,
  buf: Buffer,
  len: number,
  flags: number,
  addr: Buffer,
  alen: number[],
) => number;
export { close } from './libc.js';

/** errno of the last failed call on this thread. */
export function socketErrno(): number {
  return koffi.errno();
}

/** struct sockaddr_in for an IPv4 address and port. */
export function sockaddrIn(address: string, port = 0): Buffer {
  if (!isIPv4(address)) throw new RangeError(`${address} is not an IPv4 address`);
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(AF_INET, 0);
  buf.writeUInt16BE(port, 2);
  address.split('.').forEach((o, i) => buf.writeUInt8(Number(o), 4 + i));
  return buf;
}

/** struct sockaddr_in6: family, port, flow info, address, scope id. */
export function sockaddrIn6(address: string, port = 0): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  ipv6ToBuffer(address).copy(buf, 8);
  return buf;
}
