import koffi from 'koffi';
import { isIPv4 } from 'node:net';
import { withNetns } from '../sandbox/netns-switch.js';
import { echoReplySeq, echoRequest } from './vtep-echo.js';

/**
 * The probes' socket: an ICMP ping socket (SOCK_DGRAM, IPPROTO_ICMP) made inside the ingress
 * sandbox and bound to its ingress-overlay address, so every echo crosses the overlay's VXLAN as
 * published-port traffic does. Echo rather than a UDP probe because the peer's kernel answers it:
 * the answer proves the peer's data path (sandbox, overlay, VTEP), not its agent, so a restarting
 * agent or an older one that knows nothing of probes never looks dead.
 *
 * Node has no ICMP socket, and on this kind of VM every event-loop wake-up costs ~0.3 ms of CPU: so
 * the socket is driven by plain non-blocking syscalls (koffi), never registered with libuv. The prober
 * sends on its timer and drains the answers on the next tick, one wake-up per interval in all.
 * socket(2) and bind(2) run while switched into the sandbox (netns-switch.ts); the socket stays there.
 */

const libc = koffi.load('libc.so.6');
const socketCall = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const bindCall = libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number;
const sendtoCall = libc.func('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)') as (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, alen: number) => number;
const recvfromCall = libc.func('long recvfrom(int fd, _Out_ void *buf, size_t len, int flags, _Out_ void *addr, _Inout_ uint32_t *alen)') as (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, alen: number[]) => number;
const closeCall = libc.func('int close(int fd)') as (fd: number) => number;

const AF_INET = 2;
/** SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC with IPPROTO_ICMP: a ping socket. */
const PING_SOCKET = { type: 2 | 0o4000 | 0o2000000, protocol: 1 } as const;
const EACCES = 13;
/** Answers read per drain at most: a flood of stray datagrams cannot hold the tick. */
const MAX_DRAIN = 4096;

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

function sockaddrIn(ip: string): Buffer {
  if (!isIPv4(ip)) throw new RangeError(`VTEP probe address ${ip} is not an IPv4 address`);
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(AF_INET, 0);
  Buffer.from(ip.split('.').map(Number)).copy(addr, 4);
  return addr;
}

/** One answer drained from the socket. */
export interface EchoAnswer {
  from: string;
  seq: number;
}

/** A non-blocking ping socket in a namespace; every call is one syscall that never waits. */
export class EchoSocket {
  private readonly buf = Buffer.alloc(64);
  private readonly from = Buffer.alloc(16);
  private readonly addrs = new Map<string, Buffer>();
  private fd: number;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens a ping socket bound to `source` inside `netns`. */
  static open(netns: string, source: string): EchoSocket {
    const addr = sockaddrIn(source);
    return new EchoSocket(
      withNetns(netns, () => {
        const fd = socketCall(AF_INET, PING_SOCKET.type, PING_SOCKET.protocol);
        if (fd < 0) throw new VtepSocketError(koffi.errno(), 'socket', source, netns);
        if (bindCall(fd, addr, addr.length) !== 0) {
          const errno = koffi.errno();
          closeCall(fd);
          throw new VtepSocketError(errno, 'bind', source, netns);
        }
        return fd;
      }),
    );
  }

  /** Sends echo `seq` to `address`; false when the kernel refused it at once (no route, buffer full). */
  send(address: string, seq: number): boolean {
    let addr = this.addrs.get(address);
    if (!addr) {
      if (this.addrs.size >= 4096) this.addrs.clear();
      this.addrs.set(address, (addr = sockaddrIn(address)));
    }
    const req = echoRequest(seq);
    return this.fd >= 0 && sendtoCall(this.fd, req, req.length, 0, addr, addr.length) === req.length;
  }

  /** Every probe answer waiting in the socket (anything else is dropped). */
  drain(): EchoAnswer[] {
    const out: EchoAnswer[] = [];
    for (let i = 0; i < MAX_DRAIN && this.fd >= 0; i++) {
      const n = recvfromCall(this.fd, this.buf, this.buf.length, 0, this.from, [this.from.length]);
      if (n < 0) break;
      const seq = echoReplySeq(this.buf.subarray(0, n));
      if (seq !== null) out.push({ from: `${this.from[4]}.${this.from[5]}.${this.from[6]}.${this.from[7]}`, seq });
    }
    return out;
  }

  /** Closes the socket; later calls do nothing. */
  close(): void {
    if (this.fd >= 0) closeCall(this.fd);
    this.fd = -1;
  }
}
