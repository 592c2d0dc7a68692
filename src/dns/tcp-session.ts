import type { Socket as TcpSocket } from 'node:net';
import { InvalidDnsInputError } from './errors.js';
import { MAX_QUERY_BYTES } from './wire.js';

/** Limits of the resolver's TCP service in one namespace (RFC 7766 leaves the numbers to servers). */
export interface TcpLimits {
  /** Connections served at once per namespace; more are closed at once. */
  maxConnections: number;
  /** A connection is closed when no complete query arrives for this long; stray bytes do not count. */
  idleMs: number;
  /** A connection is closed this long after it opened, however busy, so no client holds one forever. */
  maxLifetimeMs: number;
  /** Reading pauses while this many answer bytes wait to be written (the socket's high-water mark). */
  writeHighWaterBytes: number;
}

/** The limits used unless a test or the operator chooses others. */
export const DEFAULT_TCP_LIMITS: Readonly<TcpLimits> = {
  maxConnections: 64,
  idleMs: 10_000,
  maxLifetimeMs: 60_000,
  writeHighWaterBytes: 64 * 1024,
};

/** Checks limits given at the edge; throws InvalidDnsInputError naming the bad field. */
export function tcpLimits(partial: Partial<TcpLimits> = {}): TcpLimits {
  const limits = { ...DEFAULT_TCP_LIMITS, ...partial };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) throw new InvalidDnsInputError(`tcp.${key} ${value} must be a positive integer`);
  }
  return limits;
}

/** Answers one query; `send` may be called later (forwarded names) or never (dropped input). */
export type Responder = (msg: Buffer, send: (wire: Buffer) => void) => void;

/**
 * One client connection: length-prefixed queries in, answers out. Reading pauses while the
 * client does not read its answers (the socket's write buffer is above its high-water mark,
 * which the server sets to `writeHighWaterBytes`) and resumes on 'drain', so a client that only
 * writes cannot make the worker buffer answers without bound. Two deadlines end it: an idle one,
 * reset only by a complete query (a byte every few seconds does not keep it open), and an
 * absolute one that no activity extends.
 */
export class TcpSession {
  private buffered: Buffer = Buffer.alloc(0);
  private paused = false;
  private readonly idle: NodeJS.Timeout;
  private readonly lifetime: NodeJS.Timeout;

  constructor(
    private readonly sock: TcpSocket,
    limits: TcpLimits,
    private readonly respond: Responder,
  ) {
    this.idle = setTimeout(() => sock.destroy(), limits.idleMs);
    this.lifetime = setTimeout(() => sock.destroy(), limits.maxLifetimeMs);
    sock.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.readQueries();
    });
    sock.on('drain', () => {
      if (!this.paused) return;
      this.paused = false;
      sock.resume();
      this.readQueries();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(this.idle);
      clearTimeout(this.lifetime);
    });
  }

  /** Reading is paused until the client reads its answers. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Answer bytes written but not yet taken by the kernel. */
  get queuedBytes(): number {
    return this.sock.writableLength;
  }

  /** Closes the connection at once. */
  destroy(): void {
    this.sock.destroy();
  }

  private readQueries(): void {
    while (this.buffered.length >= 2 && !this.sock.destroyed) {
      // Also checked between queries of one chunk: a single read can carry hundreds of them.
      if (this.sock.writableNeedDrain) {
        this.paused = true;
        this.sock.pause();
        return;
      }
      const len = this.buffered.readUInt16BE(0);
      if (len > MAX_QUERY_BYTES || len < 12) {
        this.sock.destroy();
        return;
      }
      if (this.buffered.length < 2 + len) return;
      const msg = Buffer.from(this.buffered.subarray(2, 2 + len));
      this.buffered = this.buffered.subarray(2 + len);
      this.idle.refresh();
      this.respond(msg, (wire) => this.send(wire));
    }
  }

  private send(wire: Buffer): void {
    if (this.sock.destroyed) return;
    const head = Buffer.allocUnsafe(2);
    head.writeUInt16BE(wire.length);
    this.sock.write(Buffer.concat([head, wire]));
  }
}
