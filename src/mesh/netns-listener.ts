import koffi from 'koffi';
import { MeshError } from './errors.js';
import { withNetns } from '../sandbox/netns-switch.js';
import { ipv6ToBuffer } from '../sandbox/addresses6.js';

/**
 * A listening TCP socket created inside another network namespace. Node binds asynchronously,
 * so a server started inside `withNetns` would bind after the thread has switched back; here
 * socket(2), bind(2) and listen(2) all run synchronously while switched, and Node adopts the
 * finished descriptor (`server.listen({ fd })`). The socket stays in the namespace it was made in.
 */

const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)') as (
  fd: number,
  level: number,
  name: number,
  value: Buffer,
  len: number,
) => number;
const bind = libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number;
const listen = libc.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number;
const close = libc.func('int close(int fd)') as (fd: number) => number;

const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const EADDRINUSE = 98;

/** The listener could not be created; `errno` says why (98: the port is in use). */
export class ListenFailedError extends MeshError {
  constructor(
    readonly errno: number,
    step: string,
    address: string,
    port: number,
    netns: string | null,
  ) {
    super(
      errno === EADDRINUSE ? 'MESH_LISTEN_IN_USE' : 'MESH_LISTEN_FAILED',
      `cannot listen on ${address}:${port}${netns ? ` in ${netns}` : ''}: ${step} failed with errno ${errno}` +
        (errno === EADDRINUSE ? ' (the port is already in use there: pick another health port)' : ''),
    );
  }
}

function sockaddrIn(address: string, port: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeUInt16LE(AF_INET, 0);
  buf.writeUInt16BE(port, 2);
  address.split('.').forEach((o, i) => buf.writeUInt8(Number(o), 4 + i));
  return buf;
}

/** struct sockaddr_in6: family, port, flow info, address, scope id. */
function sockaddrIn6(address: string, port: number): Buffer {
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  ipv6ToBuffer(address).copy(buf, 8);
  return buf;
}

/**
 * Opens a listening TCP socket on address:port inside `netns` (null: here); returns its descriptor. A v6 address
 * gets a v6-only socket, so `::` and `0.0.0.0` on one port are two sockets that never collide.
 */
export function listenTcpInNetns(netns: string | null, address: string, port: number, backlog = 128): number {
  return withNetns(netns, () => {
    const v6 = address.includes(':');
    const fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new ListenFailedError(koffi.errno(), 'socket', address, port, netns);
    const fail = (step: string): never => {
      const errno = koffi.errno();
      close(fd);
      throw new ListenFailedError(errno, step, address, port, netns);
    };
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail('setsockopt');
    if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4) !== 0) fail('setsockopt');
    const addr = v6 ? sockaddrIn6(address, port) : sockaddrIn(address, port);
    if (bind(fd, addr, addr.length) !== 0) fail('bind');
    if (listen(fd, backlog) !== 0) fail('listen');
    return fd;
  });
}
