import type { Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { AnswerTable } from './answer-table.js';
import { countAnswer, emptyDnsCounters, type DnsCounters } from './dns-counters.js';
import { UpstreamForwarder, type ForwarderOptions } from './forwarder.js';
import { handleQuery, type Transport } from './query-handler.js';
import { boundUdpFd, listenTcp, udpFromFd, udpSocket } from './sockets.js';
import type { SocketFds } from './worker-protocol.js';
import { TcpSession, tcpLimits, type TcpLimits } from './tcp-session.js';

/** The resolver's address inside every task namespace. */
export const RESOLVER_ADDRESS = '127.0.0.11';
/** The port clients ask (resolv.conf has no port); the resolver listens there only when told to. */
export const RESOLVER_PORT = 53;

/** Error answers (FORMERR/NOTIMP/...) per second per namespace; beyond it malformed input is dropped. */
const ERROR_ANSWERS_PER_SECOND = 200;
/** Kernel receive queue of the UDP socket (capped by net.core.rmem_max). */
const UDP_RECEIVE_BUFFER_BYTES = 512 * 1024;
/** Kernel-chosen UDP ports tried before giving up when TCP cannot take the same number. */
const EPHEMERAL_BIND_TRIES = 8;

export interface NamespaceServerOptions {
  table: AnswerTable;
  forward: ForwarderOptions;
  address?: string;
  /** 0 (the default): a port the kernel picks, the same number for UDP and TCP. */
  port?: number;
  /** With port 0: a port to try first; taken, the kernel picks one (stableResolverPort). */
  preferPort?: number;
  /** Sockets bound before (by an earlier agent or worker) to serve instead of binding; the server owns them. */
  fds?: SocketFds;
  tcp?: Partial<TcpLimits>;
  log: (event: Record<string, unknown>) => void;
  /** Where queries and answers are counted (a worker shares one among its namespaces); default: its own. */
  counters?: DnsCounters;
}

/** What `tcpStats` reports: enough to see backpressure and connection limits at work. */
export interface TcpStats {
  connections: number;
  paused: number;
  queuedBytes: number;
}

/** A namespace's bound sockets; `udpFd` is the UDP socket's descriptor (node's: it closes with `udp`). */
interface Pair {
  udp: UdpSocket;
  udpFd: number;
  tcp: Server;
}

/**
 * Binds UDP on `port` and TCP on the same number. With port 0, `prefer` is tried first (when given),
 * then the kernel picks the UDP port; when that number is taken for TCP, another is drawn.
 */
async function bindPair(address: string, port: number, highWaterMark: number, prefer = 0): Promise<Pair> {
  if (port === 0 && prefer !== 0) {
    try {
      return await bindPair(address, prefer, highWaterMark);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  for (let attempt = 1; ; attempt++) {
    const udp = udpSocket();
    // highWaterMark is the accepted sockets' write buffer bound that TcpSession pauses on.
    const tcp = createServer({ pauseOnConnect: false, noDelay: true, highWaterMark });
    let handed = false;
    let udpFd = -1;
    try {
      udpFd = boundUdpFd(address, port);
      handed = true;
      await udpFromFd(udp, udpFd);
      await listenTcp(tcp, address, udp.address().port);
      return { udp, udpFd, tcp };
    } catch (err) {
      if (handed) udp.close();
      tcp.close();
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (port !== 0 || !inUse || attempt >= EPHEMERAL_BIND_TRIES) throw err;
    }
  }
}

/** Serves sockets bound earlier, whose descriptors this process holds; node owns (and closes) them from here. */
async function openPair(fds: SocketFds, highWaterMark: number): Promise<Pair> {
  const udp = udpSocket();
  const tcp = createServer({ pauseOnConnect: false, noDelay: true, highWaterMark });
  try {
    await udpFromFd(udp, fds.udp);
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ fd: fds.tcp }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    udp.close();
    tcp.close();
    throw err;
  }
  return { udp, udpFd: fds.udp, tcp };
}

/** The descriptor behind a listening server (node has no public accessor; `_handle.fd` is its own). */
function serverFd(s: Server): number {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the listener has no descriptor');
  return fd;
}

/**
 * The resolver inside one task namespace: UDP and TCP on 127.0.0.11 at one port, by default a
 * high one (preferPort, else the kernel's pick) that the task's NAT rules (resolverNatRules) map 127.0.0.11:53 to, as
 * Docker does, so that the task itself may bind :53. Forwarded queries leave from sockets the
 * forwarder opens in the namespace. `open` must run while the calling thread is inside the
 * namespace; it resolves once every socket is bound, after which the thread may leave.
 */
export class NamespaceServer {
  private table: AnswerTable;
  private errorBudget = ERROR_ANSWERS_PER_SECOND;
  private budgetSecond = 0;
  private readonly sessions = new Set<TcpSession>();
  private closed = false;

  private constructor(
    private readonly udp: UdpSocket,
    private readonly udpFd: number,
    private readonly tcp: Server,
    private readonly forwarder: UpstreamForwarder | null,
    private readonly limits: TcpLimits,
    table: AnswerTable,
    private readonly log: (event: Record<string, unknown>) => void,
    private readonly counters: DnsCounters,
  ) {
    this.table = table;
  }

  /** Binds the sockets in the calling thread's current namespace. */
  static async open(opts: NamespaceServerOptions): Promise<NamespaceServer> {
    const limits = tcpLimits(opts.tcp);
    const { udp, udpFd, tcp } = opts.fds ? await openPair(opts.fds, limits.writeHighWaterBytes) : await bindPair(opts.address ?? RESOLVER_ADDRESS, opts.port ?? 0, limits.writeHighWaterBytes, opts.preferPort);
    const forwarder = opts.forward.upstreams.length > 0 && opts.table.forwarding ? new UpstreamForwarder(opts.forward) : null;
    const server = new NamespaceServer(udp, udpFd, tcp, forwarder, limits, opts.table, opts.log, opts.counters ?? emptyDnsCounters());
    server.start();
    return server;
  }

  /** The port UDP and TCP listen on. */
  get port(): number {
    return (this.tcp.address() as AddressInfo).port;
  }

  /** The descriptors of the UDP socket and TCP listener (node's: they close with the server). */
  get fds(): SocketFds {
    return { udp: this.udpFd, tcp: serverFd(this.tcp) };
  }

  /** Swaps in the answers of a new view; queries in progress finish with the old one. */
  setTable(table: AnswerTable): void {
    this.table = table;
  }

  /** The TCP connections now open, how many are paused for backpressure, and their unsent answer bytes. */
  tcpStats(): TcpStats {
    let paused = 0;
    let queuedBytes = 0;
    for (const s of this.sessions) {
      if (s.isPaused) paused++;
      queuedBytes += s.queuedBytes;
    }
    return { connections: this.sessions.size, paused, queuedBytes };
  }

  private start(): void {
    try {
      // A burst (a flood, or many tasks starting at once) must queue in the kernel rather than
      // push out legitimate queries; a limit, not an allocation: memory is used only when queued.
      this.udp.setRecvBufferSize(UDP_RECEIVE_BUFFER_BYTES);
    } catch (err) {
      this.log({ event: 'dns.rcvbuf_not_set', error: (err as Error).message });
    }
    this.udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo.port, rinfo.address));
    // A socket error must not kill the worker serving every other namespace.
    this.udp.on('error', (err) => this.log({ event: 'dns.udp_error', error: err.message }));
    this.tcp.on('error', (err) => this.log({ event: 'dns.tcp_error', error: err.message }));
    this.tcp.on('connection', (sock) => {
      if (this.closed || this.sessions.size >= this.limits.maxConnections) {
        sock.destroy();
        return;
      }
      const session = new TcpSession(sock, this.limits, (msg, send) => this.respond(msg, 'tcp', send));
      this.sessions.add(session);
      sock.on('close', () => this.sessions.delete(session));
    });
  }

  private allowError(): boolean {
    const now = Math.floor(Date.now() / 1000);
    if (now !== this.budgetSecond) {
      this.budgetSecond = now;
      this.errorBudget = ERROR_ANSWERS_PER_SECOND;
    }
    return this.errorBudget-- > 0;
  }

  private onUdp(msg: Buffer, port: number, address: string): void {
    this.respond(msg, 'udp', (wire) => {
      if (!this.closed) this.udp.send(wire, port, address);
    });
  }

  /** Runs the pure handler and delivers its answer (now, or later for forwards). */
  private respond(msg: Buffer, transport: Transport, send: (wire: Buffer) => void): void {
    const counters = this.counters;
    counters.queries++;
    let outcome;
    try {
      outcome = handleQuery(this.table, msg, transport);
    } catch (err) {
      // The handler is written never to throw; if it ever does, drop and say so, never crash.
      this.log({ event: 'dns.handler_bug', error: (err as Error).message });
      counters.dropped++;
      return;
    }
    switch (outcome.kind) {
      case 'reply':
        countAnswer(counters, outcome.wire);
        send(outcome.wire);
        return;
      case 'error':
        if (this.allowError()) {
          countAnswer(counters, outcome.wire);
          send(outcome.wire);
        } else counters.dropped++;
        return;
      case 'forward':
        // Counted when the upstream's answer (or our SERVFAIL) goes back; a closure only on this slow path.
        if (this.forwarder)
          this.forwarder.forward(msg, outcome.query, transport === 'tcp', (wire) => {
            countAnswer(counters, wire);
            send(wire);
          });
        else counters.dropped++;
        return;
      case 'drop':
        counters.dropped++;
        return;
    }
  }

  /** Closes every socket of this namespace. */
  async close(): Promise<void> {
    this.closed = true;
    this.forwarder?.close();
    for (const s of this.sessions) s.destroy();
    await Promise.all([new Promise<void>((r) => this.udp.close(() => r())), new Promise<void>((r) => this.tcp.close(() => r()))]);
  }
}
