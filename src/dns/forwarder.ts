import type { Socket as UdpSocket, RemoteInfo } from 'node:dgram';
import type { Socket as TcpSocket } from 'node:net';
import { isIPv4 } from 'node:net';
import { InvalidDnsInputError } from './errors.js';
import { MAX_UPSTREAMS } from './resolv-conf.js';
import { FLAG_TC, questionOnlyAnswer, RCODE_SERVFAIL, type ParsedQuery } from './wire.js';

/** An upstream server: IPv4 address and port (53 unless the option said `ip:port`). */
export interface Upstream {
  host: string;
  port: number;
}

/** Parses `ip` or `ip:port` upstream strings (at most three, IPv4); throws InvalidDnsInputError. */
export function parseUpstreams(list: readonly string[]): Upstream[] {
  if (list.length > MAX_UPSTREAMS) {
    throw new InvalidDnsInputError(`${list.length} upstreams given; at most ${MAX_UPSTREAMS} are tried, so pass the first three`);
  }
  return list.map((s) => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(s.trim());
    const port = m?.[2] ? Number(m[2]) : 53;
    if (!m || !isIPv4(m[1]!) || port < 1 || port > 65535) {
      throw new InvalidDnsInputError(`invalid upstream ${JSON.stringify(s)}: give an IPv4 address, optionally with :port`);
    }
    return { host: m[1]!, port };
  });
}

/** Opens a TCP connection from inside the served namespace (the worker serialises namespace switches). */
export type TcpOpener = (upstream: Upstream) => Promise<TcpSocket>;

export interface ForwarderOptions {
  upstreams: Upstream[];
  /** Per try; the next upstream is asked after it (Swarm: 4 s; stub resolvers give up after 5 s). */
  timeoutMs: number;
  /** Forwards in flight at once per namespace; beyond it the query is answered SERVFAIL at once. */
  maxConcurrent: number;
  openTcp?: TcpOpener;
}

interface Pending {
  clientQuery: Buffer;
  questionEnd: number;
  upstreamIndex: number;
  timer: NodeJS.Timeout;
  reply: (wire: Buffer) => void;
  overTcp: boolean;
}

/**
 * Forwards names that are not ours, from a UDP socket created inside the task's namespace
 * (Docker's way): the upstream is reached over the task's own network path (gwbridge + NAT in
 * production, a lab address in tests), and never from the agent's namespace, which a task must
 * not be able to use as a relay into the host's networks. The query bytes are sent unchanged
 * except for a fresh random ID, and the upstream's answer is relayed as received except for
 * the ID put back; a truncated upstream answer to a TCP client is fetched again over TCP.
 */
export class UpstreamForwarder {
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(
    private readonly socket: UdpSocket,
    private readonly opts: ForwarderOptions,
  ) {
    socket.on('message', (msg, rinfo) => this.onAnswer(msg, rinfo));
  }

  /** Forwards are in flight right now (tests and logs). */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends `msg` upstream; `reply` gets the relayed answer, or SERVFAIL when nobody answers. */
  forward(msg: Buffer, q: ParsedQuery, overTcp: boolean, reply: (wire: Buffer) => void): void {
    if (this.closed || this.opts.upstreams.length === 0 || this.pending.size >= this.opts.maxConcurrent) {
      reply(questionOnlyAnswer(msg, q, RCODE_SERVFAIL));
      return;
    }
    let id = (Math.random() * 0x10000) | 0;
    while (this.pending.has(id)) id = (id + 1) & 0xffff;
    const clientQuery = Buffer.from(msg);
    const entry: Pending = { clientQuery, questionEnd: q.questionEnd, upstreamIndex: 0, timer: undefined as unknown as NodeJS.Timeout, reply, overTcp };
    this.pending.set(id, entry);
    this.send(id, entry);
  }

  private send(id: number, entry: Pending): void {
    const upstream = this.opts.upstreams[entry.upstreamIndex]!;
    const out = Buffer.from(entry.clientQuery);
    out.writeUInt16BE(id, 0);
    entry.timer = setTimeout(() => this.onTimeout(id, entry), this.opts.timeoutMs);
    this.socket.send(out, upstream.port, upstream.host, (err) => {
      if (err) this.onTimeout(id, entry);
    });
  }

  private onTimeout(id: number, entry: Pending): void {
    if (this.pending.get(id) !== entry) return;
    clearTimeout(entry.timer);
    entry.upstreamIndex++;
    if (entry.upstreamIndex < this.opts.upstreams.length && !this.closed) {
      this.send(id, entry);
      return;
    }
    this.pending.delete(id);
    this.failWith(entry);
  }

  private failWith(entry: Pending): void {
    const q = { flags: entry.clientQuery.readUInt16BE(2), questionEnd: entry.questionEnd, ednsSize: 0 } as ParsedQuery;
    entry.reply(questionOnlyAnswer(entry.clientQuery, q, RCODE_SERVFAIL));
  }

  private onAnswer(msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length < 12 || !(msg[2]! & 0x80)) return;
    const id = msg.readUInt16BE(0);
    const entry = this.pending.get(id);
    if (!entry) return;
    // Only the upstream we asked, answering the question we asked, is relayed (no spoofing
    // from other local senders that guessed the port and ID).
    const asked = this.opts.upstreams[entry.upstreamIndex]!;
    if (rinfo.address !== asked.host || rinfo.port !== asked.port) return;
    if (msg.length < entry.questionEnd || msg.compare(entry.clientQuery, 12, entry.questionEnd, 12, entry.questionEnd) !== 0) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    if (entry.overTcp && msg.readUInt16BE(2) & FLAG_TC && this.opts.openTcp) {
      void this.retryOverTcp(entry, asked);
      return;
    }
    const out = Buffer.from(msg);
    out[0] = entry.clientQuery[0]!;
    out[1] = entry.clientQuery[1]!;
    entry.reply(out);
  }

  private async retryOverTcp(entry: Pending, upstream: Upstream): Promise<void> {
    try {
      const sock = await this.opts.openTcp!(upstream);
      const answer = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let have = 0;
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error('timeout'));
        }, this.opts.timeoutMs);
        sock.on('data', (d: Buffer) => {
          chunks.push(d);
          have += d.length;
          const all = Buffer.concat(chunks, have);
          if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) {
            clearTimeout(timer);
            sock.destroy();
            resolve(all.subarray(2, 2 + all.readUInt16BE(0)));
          }
        });
        sock.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        sock.on('close', () => {
          clearTimeout(timer);
          reject(new Error('closed'));
        });
        const len = Buffer.alloc(2);
        len.writeUInt16BE(entry.clientQuery.length);
        sock.write(Buffer.concat([len, entry.clientQuery]));
      });
      if (answer.length < 12 || answer.readUInt16BE(0) !== entry.clientQuery.readUInt16BE(0)) throw new Error('mismatched answer');
      entry.reply(Buffer.from(answer));
    } catch {
      this.failWith(entry);
    }
  }

  /** Fails every forward in flight with SERVFAIL and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(id);
    }
  }
}
