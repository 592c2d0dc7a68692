import koffi from 'koffi';
import { isIPv4 } from 'node:net';
import { withNetns } from '../sandbox/netns-switch.js';

/**
 * The probes' socket: an ICMP ping socket (SOCK_DGRAM, IPPROTO_ICMP) made inside the ingress
 * sandbox and bound to its ingress-overlay address, so every echo crosses the overlay's VXLAN as
 * published-port traffic does. Echo rather than a UDP probe because the peer's kernel answers it:
 * the answer proves the peer's data path (sandbox, overlay, VTEP), not its agent, so a restarting
 * agent or an older one that knows nothing of probes never looks dead. Node's dgram binds
 * asynchronously and has no ICMP, so socket(2) and bind(2) run here, synchronously while switched
 * (netns-switch.ts); libuv sees a datagram socket and dgram adopts the descriptor (`bind({ fd })`).
 */

const libc = koffi.load('libc.so.6');
const socketCall = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const bindCall = libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number;
const closeCall = libc.func('int close(int fd)') as (fd: number) => number;

const AF_INET = 2;
/** SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC with IPPROTO_ICMP: a ping socket. */
const PING_SOCKET = { type: 2 | 0o4000 | 0o2000000, protocol: 1 } as const;
const EACCES = 13;

/**
 * Ping sockets are open to the groups in this range; a namespace starts with none. Set in the
 * ingress sandbox by the node plan (sysctls come from plans only); meshnet's agent runs as root.
 */
export const VTEP_PROBE_SYSCTL = { key: 'net.ipv4.ping_group_range', value: '0 0' } as const;

/** The probe socket could not be made; `errno` says why. */
export class VtepSocketError extends Error {
  constructor(
    readonly errno: number,
    step: string,
    source: string,
    netns: string,
  ) {
    super(
      `cannot open the VTEP probe socket on ${source} in ${netns}: ${step} failed with errno ${errno}` +
        (errno === EACCES ? ` (ping sockets are not allowed there: ${VTEP_PROBE_SYSCTL.key} must include gid ${process.getgid?.() ?? 0})` : ''),
    );
    this.name = 'VtepSocketError';
  }
}

/** Opens a non-blocking ICMP ping socket bound to `source` inside `netns`; returns its descriptor. */
export function openEchoSocket(netns: string, source: string): number {
  if (!isIPv4(source)) throw new RangeError(`VTEP probe source ${source} is not an IPv4 address`);
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(AF_INET, 0);
  Buffer.from(source.split('.').map(Number)).copy(addr, 4);
  return withNetns(netns, () => {
    const fd = socketCall(AF_INET, PING_SOCKET.type, PING_SOCKET.protocol);
    if (fd < 0) throw new VtepSocketError(koffi.errno(), 'socket', source, netns);
    if (bindCall(fd, addr, addr.length) !== 0) {
      const errno = koffi.errno();
      closeCall(fd);
      throw new VtepSocketError(errno, 'bind', source, netns);
    }
    return fd;
  });
}

/** Closes a descriptor that `openEchoSocket` returned and nothing adopted. */
export function closeEchoSocket(fd: number): void {
  closeCall(fd);
}
