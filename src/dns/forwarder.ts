import { randomInt } from 'node:crypto';
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
/** Opens a UDP socket bound to a fresh kernel-chosen port inside the served namespace. */
export type UdpOpener = () => Promise<UdpSocket>;

export interface ForwarderOptions {
  upstreams: Upstream[];
  /** Per try; the next upstream is asked after it (Swarm: 4 s; stub resolvers give up after 5 s). */
  timeoutMs: number;
  /** Forwards in flight at once per namespace, TCP retries included; beyond it the query is answered SERVFAIL at once. */
  maxConcurrent: number;
  /** One socket per upstream query, so every query leaves from its own random port (RFC 5452 section 9.2). */
  openUdp: UdpOpener;
  openTcp?: TcpOpener;
}

/** One client query on its way through the upstreams. */
interface Forward {
  clientQuery: Buffer;
  questionEnd: number;
  upstreamIndex: number;
  reply: (wire: Buffer) => void;
  overTcp: boolean;
  attempt: Attempt | null;
  done: boolean;
}

/** One try at one upstream: its own socket, ID and timer. */
interface Attempt {
  socket: UdpSocket;
  id: number;
  upstream: Upstream;
  timer: NodeJS.Timeout;
}

/** A 16-bit query ID from the CSPRNG: Math.random's state can be recovered from a few outputs. */
function queryId(): number {
  return randomInt(0, 0x10000);
}

/** The upstream's message answers what we sent: a response, our ID, our question byte for byte. */
function answers(msg: Buffer, id: number, f: Forward): boolean {
  if (msg.length < f.questionEnd || !(msg[2]! & 0x80) || msg.readUInt16BE(0) !== id) return false;
  return msg.compare(f.clientQuery, 12, f.questionEnd, 12, f.questionEnd) === 0;
}

/**
 * Forwards names that are not ours, from sockets created inside the task's namespace
 * (Docker's way): the upstream is reached over the task's own network path (gwbridge + NAT in
 * production, a lab address in tests), and never from the agent's namespace, which a task must
 * not be able to use as a relay into the host's networks. Per RFC 5452 every upstream query
 * gets a fresh socket on a random port and a random ID, and only an answer from the address and
 * port asked, with that ID and the same question, is taken. The query bytes are sent unchanged
 * except for the ID, and the answer is relayed as received except for the client's ID put back;
 * a truncated upstream answer to a TCP client is fetched again over TCP.
 */
export class UpstreamForwarder {
  private readonly active = new Set<Forward>();
  private closed = false;

  constructor(private readonly opts: ForwarderOptions) {}

  /** Forwards in flight right now, TCP retries included (tests and logs). */
  get inFlight(): number {
    return this.active.size;
  }

  /** Sends `msg` upstream; `reply` gets the relayed answer, or SERVFAIL when nobody answers. */
  forward(msg: Buffer, q: ParsedQuery, overTcp: boolean, reply: (wire: Buffer) => void): void {
    if (this.closed || this.opts.upstreams.length === 0 || this.active.size >= this.opts.maxConcurrent) {
      reply(questionOnlyAnswer(msg, q, RCODE_SERVFAIL));
      return;
    }
    const f: Forward = { clientQuery: Buffer.from(msg), questionEnd: q.questionEnd, upstreamIndex: 0, reply, overTcp, attempt: null, done: false };
    this.active.add(f);
    void this.ask(f);
  }

  private async ask(f: Forward): Promise<void> {
    const upstream = this.opts.upstreams[f.upstreamIndex]!;
    let socket: UdpSocket;
    try {
      socket = await this.opts.openUdp();
    } catch {
      this.nextUpstream(f);
      return;
    }
    if (f.done) {
      socket.close();
      return;
    }
    const attempt: Attempt = { socket, id: queryId(), upstream, timer: setTimeout(() => this.abandon(f, attempt), this.opts.timeoutMs) };
    f.attempt = attempt;
    socket.on('message', (msg, rinfo) => this.onAnswer(f, attempt, msg, rinfo));
    socket.on('error', () => this.abandon(f, attempt));
    const out = Buffer.from(f.clientQuery);
    out.writeUInt16BE(attempt.id, 0);
    socket.send(out, upstream.port, upstream.host, (err) => {
      if (err) this.abandon(f, attempt);
    });
  }

  private endAttempt(f: Forward, attempt: Attempt): void {
    clearTimeout(attempt.timer);
    attempt.socket.close();
    if (f.attempt === attempt) f.attempt = null;
  }

  /** The try failed or timed out: the next upstream is asked, or the client gets SERVFAIL. */
  private abandon(f: Forward, attempt: Attempt): void {
    if (f.attempt !== attempt) return;
    this.endAttempt(f, attempt);
    this.nextUpstream(f);
  }

  private nextUpstream(f: Forward): void {
    f.upstreamIndex++;
    if (f.upstreamIndex < this.opts.upstreams.length && !this.closed && !f.done) void this.ask(f);
    else this.failWith(f);
  }

  private finish(f: Forward, wire: Buffer): void {
    if (f.done) return;
    f.done = true;
    this.active.delete(f);
    f.reply(wire);
  }

  private failWith(f: Forward): void {
    const q = { flags: f.clientQuery.readUInt16BE(2), questionEnd: f.questionEnd, ednsSize: 0 } as ParsedQuery;
    this.finish(f, questionOnlyAnswer(f.clientQuery, q, RCODE_SERVFAIL));
  }

  /** The answer with the client's ID put back. */
  private relayed(f: Forward, msg: Buffer): Buffer {
    const out = Buffer.from(msg);
    out[0] = f.clientQuery[0]!;
    out[1] = f.clientQuery[1]!;
    return out;
  }

  private onAnswer(f: Forward, attempt: Attempt, msg: Buffer, rinfo: RemoteInfo): void {
    if (f.attempt !== attempt) return;
    // Only the upstream we asked, answering what we asked, is relayed: a local sender that
    // guessed the port must also guess the ID, and a stray answer never ends the wait.
    if (rinfo.address !== attempt.upstream.host || rinfo.port !== attempt.upstream.port) return;
    if (!answers(msg, attempt.id, f)) return;
    this.endAttempt(f, attempt);
    if (f.overTcp && msg.readUInt16BE(2) & FLAG_TC && this.opts.openTcp) {
      // Still counted in `active`: the retry holds a connection until it ends.
      void this.retryOverTcp(f, attempt.upstream);
      return;
    }
    this.finish(f, this.relayed(f, msg));
  }

  private async retryOverTcp(f: Forward, upstream: Upstream): Promise<void> {
    const id = queryId();
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
        const out = Buffer.alloc(2 + f.clientQuery.length);
        out.writeUInt16BE(f.clientQuery.length, 0);
        f.clientQuery.copy(out, 2);
        out.writeUInt16BE(id, 2);
        sock.write(out);
      });
      if (!answers(answer, id, f)) throw new Error('mismatched answer');
      this.finish(f, this.relayed(f, answer));
    } catch {
      this.failWith(f);
    }
  }

  /** Stops every forward in flight (their clients get no answer) and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const f of this.active) {
      f.done = true;
      if (f.attempt) this.endAttempt(f, f.attempt);
    }
    this.active.clear();
  }
}
