import { withNetns } from '../sandbox/netns-switch.js';
import { AF_INET, bind, close, recvfrom, sendto, SOCK_CLOEXEC, SOCK_NONBLOCK, sockaddrIn, socket, socketErrno } from '../sandbox/libc-sockets.js';
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

/** SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC with IPPROTO_ICMP: a ping socket. */
const PING_SOCKET = { type: 2 | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol: 1 } as const;
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
        const fd = socket(AF_INET, PING_SOCKET.type, PING_SOCKET.protocol);
        if (fd < 0) throw new VtepSocketError(socketErrno(), 'socket', source, netns);
        if (bind(fd, addr, addr.length) !== 0) {
          const errno = socketErrno();
          close(fd);
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
    return this.fd >= 0 && sendto(this.fd, req, req.length, 0, addr, addr.length) === req.length;
  }

  /** Every probe answer waiting in the socket (anything else is dropped). */
  drain(): EchoAnswer[] {
    const out: EchoAnswer[] = [];
    for (let i = 0; i < MAX_DRAIN && this.fd >= 0; i++) {
      const n = recvfrom(this.fd, this.buf, this.buf.length, 0, this.from, [this.from.length]);
      if (n < 0) break;
      const seq = echoReplySeq(this.buf.subarray(0, n));
      if (seq !== null) out.push({ from: `${this.from[4]}.${this.from[5]}.${this.from[6]}.${this.from[7]}`, seq });
    }
    return out;
  }

  /** Closes the socket; later calls do nothing. */
  close(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
  }
}
