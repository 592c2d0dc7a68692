import { MeshError } from './errors.js';
import { withNetns } from '../sandbox/netns-switch.js';
import { AF_INET, AF_INET6, bind, close, listen, setsockopt, SOCK_CLOEXEC, SOCK_NONBLOCK, sockaddrIn, sockaddrIn6, socket, socketErrno } from '../sandbox/libc-sockets.js';

/**
 * A listening TCP socket created inside another network namespace. Node binds asynchronously,
 * so a server started inside `withNetns` would bind after the thread has switched back; here
 * socket(2), bind(2) and listen(2) all run synchronously while switched, and Node adopts the
 * finished descriptor (`server.listen({ fd })`). The socket stays in the namespace it was made in.
 */

const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const SOCK_STREAM = 1;
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

/**
 * Opens a listening TCP socket on address:port inside `netns` (null: here); returns its descriptor. A v6 address
 * gets a v6-only socket, so `::` and `0.0.0.0` on one port are two sockets that never collide.
 */
export function listenTcpInNetns(netns: string | null, address: string, port: number, backlog = 128): number {
  return withNetns(netns, () => {
    const v6 = address.includes(':');
    const fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new ListenFailedError(socketErrno(), 'socket', address, port, netns);
    const fail = (step: string): never => {
      const errno = socketErrno();
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
