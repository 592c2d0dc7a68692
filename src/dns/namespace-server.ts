import { createSocket, type Socket as UdpSocket, type SocketOptions } from 'node:dgram';
import { createServer, isIPv4, type Server, type Socket as TcpSocket } from 'node:net';
import type { AnswerTable } from './answer-table.js';
import { UpstreamForwarder, type ForwarderOptions } from './forwarder.js';
import { handleQuery, type Transport } from './query-handler.js';
import { MAX_QUERY_BYTES } from './wire.js';

/** The resolver's address inside every task namespace. */
export const RESOLVER_ADDRESS = '127.0.0.11';
export const RESOLVER_PORT = 53;

/** Error answers (FORMERR/NOTIMP/...) per second per namespace; beyond it malformed input is dropped. */
const ERROR_ANSWERS_PER_SECOND = 200;
/** TCP connections served at once per namespace; more are closed at once. */
const MAX_TCP_CONNECTIONS = 64;
/** An idle TCP connection is closed after this long (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;
/** Kernel receive queue of the UDP socket (capped by net.core.rmem_max). */
const UDP_RECEIVE_BUFFER_BYTES = 512 * 1024;

/**
 * dgram resolves every address it binds or sends to through a lookup function; the default is
 * dns.lookup, which can reach the libuv threadpool. Workers pass IPv4 literals only, so this
 * one answers them in place and refuses names outright.
 */
export function literalLookup(address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  if (isIPv4(address)) callback(null, address, 4);
  else callback(new Error(`${address} is not an IPv4 literal: the resolver never looks names up`), '', 4);
}

function udpSocket(): UdpSocket {
  return createSocket({ type: 'udp4', lookup: literalLookup as unknown as SocketOptions['lookup'] });
}

function listenUdp(sock: UdpSocket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.off('error', onError);
      resolve();
    });
  });
}

function listenTcp(server: Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export interface NamespaceServerOptions {
  table: AnswerTable;
  forward: Omit<ForwarderOptions, 'openTcp'> & { openTcp?: ForwarderOptions['openTcp'] };
  address?: string;
  port?: number;
  log: (event: Record<string, unknown>) => void;
}

/**
 * The resolver inside one task namespace: UDP and TCP on 127.0.0.11:53 bound directly (no
 * DNAT from :53 to a random port as Docker does: no nat rules or conntrack entries per task,
 * so no conntrack race on parallel A/AAAA, and nothing to clean up but the sockets), plus one
 * UDP socket for forwarding. `open` must run while the calling thread is inside the namespace;
 * it resolves once every socket is bound, after which the thread may leave.
 */
export class NamespaceServer {
  private table: AnswerTable;
  private errorBudget = ERROR_ANSWERS_PER_SECOND;
  private budgetSecond = 0;
  private readonly connections = new Set<TcpSocket>();
  private closed = false;

  private constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    private readonly forwardSocket: UdpSocket | null,
    private readonly forwarder: UpstreamForwarder | null,
    table: AnswerTable,
    private readonly log: (event: Record<string, unknown>) => void,
  ) {
    this.table = table;
  }

  /** Binds the sockets in the calling thread's current namespace. */
  static async open(opts: NamespaceServerOptions): Promise<NamespaceServer> {
    const address = opts.address ?? RESOLVER_ADDRESS;
    const port = opts.port ?? RESOLVER_PORT;
    const udp = udpSocket();
    const tcp = createServer({ pauseOnConnect: false, noDelay: true });
    let forwardSocket: UdpSocket | null = null;
    try {
      await listenUdp(udp, address, port);
      await listenTcp(tcp, address, port);
      if (opts.forward.upstreams.length > 0 && opts.table.forwarding) {
        forwardSocket = udpSocket();
        await listenUdp(forwardSocket, '0.0.0.0', 0);
      }
    } catch (err) {
      udp.close();
      tcp.close();
      forwardSocket?.close();
      throw err;
    }
    const forwarder = forwardSocket ? new UpstreamForwarder(forwardSocket, opts.forward) : null;
    const server = new NamespaceServer(udp, tcp, forwardSocket, forwarder, opts.table, opts.log);
    server.start();
    return server;
  }

  /** Swaps in the answers of a new view; queries in progress finish with the old one. */
  setTable(table: AnswerTable): void {
    this.table = table;
  }

  private start(): void {
    try {
      // A burst (a flood, or many tasks starting at once) must queue in the kernel rather than
      // push out legitimate queries; a limit, not an allocation: memory is used only when queued.
      this.udp.setRecvBufferSize(UDP_RECEIVE_BUFFER_BYTES);
    } catch (err) {
      this.log({ event: 'dns_rcvbuf_not_set', error: (err as Error).message });
    }
    this.udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo.port, rinfo.address));
    // A socket error must not kill the worker serving every other namespace.
    this.udp.on('error', (err) => this.log({ event: 'dns_udp_error', error: err.message }));
    this.forwardSocket?.on('error', (err) => this.log({ event: 'dns_forward_error', error: err.message }));
    this.tcp.on('error', (err) => this.log({ event: 'dns_tcp_error', error: err.message }));
    this.tcp.on('connection', (sock) => this.onTcp(sock));
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
    let outcome;
    try {
      outcome = handleQuery(this.table, msg, transport);
    } catch (err) {
      // The handler is written never to throw; if it ever does, drop and say so, never crash.
      this.log({ event: 'dns_handler_bug', error: (err as Error).message });
      return;
    }
    switch (outcome.kind) {
      case 'reply':
        send(outcome.wire);
        return;
      case 'error':
        if (this.allowError()) send(outcome.wire);
        return;
      case 'forward':
        if (this.forwarder) this.forwarder.forward(msg, outcome.query, transport === 'tcp', send);
        return;
      case 'drop':
        return;
    }
  }

  private onTcp(sock: TcpSocket): void {
    if (this.closed || this.connections.size >= MAX_TCP_CONNECTIONS) {
      sock.destroy();
      return;
    }
    this.connections.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (len > MAX_QUERY_BYTES || len < 12) {
          sock.destroy();
          return;
        }
        if (buffered.length < 2 + len) break;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        this.respond(Buffer.from(msg), 'tcp', (wire) => {
          if (sock.destroyed) return;
          const head = Buffer.allocUnsafe(2);
          head.writeUInt16BE(wire.length);
          sock.write(Buffer.concat([head, wire]));
        });
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.connections.delete(sock));
  }

  /** Closes every socket of this namespace. */
  async close(): Promise<void> {
    this.closed = true;
    this.forwarder?.close();
    for (const c of this.connections) c.destroy();
    await Promise.all([
      new Promise<void>((r) => this.udp.close(() => r())),
      new Promise<void>((r) => this.tcp.close(() => r())),
      this.forwardSocket ? new Promise<void>((r) => this.forwardSocket!.close(() => r())) : Promise.resolve(),
    ]);
  }
}
