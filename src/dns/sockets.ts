/**
 * The sockets the resolver binds. They are made while a worker thread stands inside a task
 * namespace, where nothing may reach the libuv threadpool: so no name lookups, ever.
 */
import { createSocket, type Socket as UdpSocket, type SocketOptions } from 'node:dgram';
import { isIPv4, type Server } from 'node:net';
import { AF_INET, bind, close, SOCK_CLOEXEC, SOCK_NONBLOCK, sockaddrIn, socket, socketErrno } from '../sandbox/libc-sockets.js';
import { closeFd, dupFd } from '../runtime/process-fds.js';
import type { SocketFds } from './worker-protocol.js';

const SOCK_DGRAM = 2;
const EADDRINUSE = 98;

/**
 * dgram resolves every address it binds or sends to through a lookup function; the default is
 * dns.lookup, which can reach the libuv threadpool. Workers pass IPv4 literals only, so this
 * one answers them in place and refuses names outright.
 */
export function literalLookup(address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  if (isIPv4(address)) callback(null, address, 4);
  else callback(new Error(`${address} is not an IPv4 literal: the resolver never looks names up`), '', 4);
}

/** An unbound IPv4 UDP socket that never looks names up. */
export function udpSocket(): UdpSocket {
  return createSocket({ type: 'udp4', lookup: literalLookup as unknown as SocketOptions['lookup'] });
}

/** Binds `sock` (port 0: the kernel picks a random free one); rejects with the bind error. */
export function bindUdp(sock: UdpSocket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.off('error', onError);
      resolve();
    });
  });
}

/**
 * A UDP socket bound to `address`:`port` in the calling thread's namespace, made with libc so that its
 * descriptor is known (node's dgram keeps its own private): the resolver keeps copies of it across restarts.
 * Fails as node's bind does, with `code` EADDRINUSE when the port is taken.
 */
export function boundUdpFd(address: string, port: number): number {
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw Object.assign(new Error(`socket() failed: errno ${socketErrno()}`), { code: 'ESOCKET' });
  const addr = sockaddrIn(address, port);
  if (bind(fd, addr, addr.length) !== 0) {
    const errno = socketErrno();
    close(fd);
    throw Object.assign(new Error(`bind ${address}:${port} failed: errno ${errno}`), { code: errno === EADDRINUSE ? 'EADDRINUSE' : 'EBIND', errno });
  }
  return fd;
}

/** Copies of a namespace's two socket descriptors that stay open whatever happens to the originals (all or none). */
export function dupPair(fds: SocketFds): SocketFds {
  const udp = dupFd(fds.udp);
  try {
    return { udp, tcp: dupFd(fds.tcp) };
  } catch (err) {
    closeFd(udp);
    throw err;
  }
}

/** Closes copies made by dupPair (or taken from the keeper). */
export function closePair(fds: SocketFds): void {
  closeFd(fds.udp);
  closeFd(fds.tcp);
}

/** Serves the bound UDP socket `fd` through node's dgram, which owns (and closes) it from here. */
export function udpFromFd(sock: UdpSocket, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    sock.bind({ fd }, () => {
      sock.off('error', onError);
      resolve();
    });
  });
}

/** Starts `server` listening; rejects with the listen error. */
export function listenTcp(server: Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * A UDP socket for one upstream query, on a port the kernel picks at random (Linux draws bind(0)
 * ports at random from ip_local_port_range), in the calling thread's current namespace.
 */
export async function queryUdpSocket(): Promise<UdpSocket> {
  const sock = udpSocket();
  try {
    await bindUdp(sock, '0.0.0.0', 0);
  } catch (err) {
    sock.close();
    throw err;
  }
  return sock;
}
