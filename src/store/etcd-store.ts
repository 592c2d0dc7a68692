import { readFileSync } from 'node:fs';
import { circuitBreaker, ConsecutiveBreaker, handleWhen, isBrokenCircuitError, noop } from 'cockatiel';
import { Etcd3, EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCUnavailableError, isRecoverableError } from 'etcd3';
import type { ICompare, IDuplexStream, IKeyValue, IRequestOp, IWatchRequest, IWatchResponse, IOptions } from 'etcd3';
import type {
  Compare,
  KeyValue,
  KvStore,
  LeaseId,
  PutOptions,
  RangeResult,
  TxnOp,
  TxnRequest,
  TxnResult,
  WatchEvent,
  WatchHandle,
  WatchOptions,
} from './kv-store.js';
import { withDeadline } from './call-deadline.js';
import {
  CompactedError,
  ETCD_SETTINGS,
  LeaseNotFoundError,
  StoreClosedError,
  StoreRequestError,
  StoreTimeoutError,
  StoreTlsError,
  StoreTlsFileError,
  StoreUnavailableError,
  type SettingName,
} from './store-errors.js';

// The etcd 3.4 backend speaks the raw KV/Lease/Watch RPCs through the etcd3 client so the KvStore contract maps
// one to one (compare-and-swap on mod_revision / version / create_revision == 0). Watches are our own loop over
// the Watch stream rather than etcd3's Watcher: etcd3 moves its resume point to the *created* response's header
// revision, which can skip events still in flight; here the resume point only advances past events delivered
// (or a progress notification), so a reconnect resumes at exactly lastDelivered + 1.
// Every call, keepalives and watch set-up included, has a deadline (callTimeoutMs): a hung etcd fails the call
// with StoreTimeoutError instead of stalling an agent's pass or its keepalive forever.

/** TLS material for the etcd client: file paths or PEM contents. */
export interface EtcdTlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** How to reach and authenticate to etcd. */
export interface EtcdStoreOptions {
  /** host:port entries (a scheme may be given; it defaults to https with TLS, http otherwise). */
  endpoints: string[];
  tls?: EtcdTlsOptions;
  auth?: { username: string; password: string };
  dialTimeoutMs?: number;
  /** Deadline of every call, keepalives included (ms, default 5000); past it the call fails with StoreTimeoutError. */
  callTimeoutMs?: number;
}

/** Default deadline of an etcd call: well under the default 10 s node lease, so a keepalive can be retried in time. */
export const DEFAULT_ETCD_CALL_TIMEOUT_MS = 5000;

const textEncoder = new TextEncoder();
/** gRPC status codes we act on (from the gRPC spec; etcd3 does not re-export grpc-js's enum). */
const grpcStatus = { DEADLINE_EXCEEDED: 4 } as const;

/** etcd's range end for a prefix: the prefix with its last byte incremented (all keys for an empty prefix). */
export function etcdPrefixRangeEnd(prefix: string): Buffer {
  const bytes = Buffer.from(textEncoder.encode(prefix));
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = end[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

function prefixKey(prefix: string): Buffer {
  return prefix.length === 0 ? Buffer.from([0]) : Buffer.from(prefix);
}

function toKeyValue(kv: IKeyValue): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    version: Number(kv.version),
  };
  if (kv.lease !== undefined && kv.lease !== '0' && kv.lease !== '') out.lease = String(kv.lease);
  return out;
}

function requireKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new StoreRequestError('store keys must be non-empty strings');
}

/**
 * Ends a gRPC stream we no longer want. Half-closing first matters: etcd3 counts an error on a still-writable
 * stream (and a cancel raises one) as a host failure, and three of those open its circuit breaker for 5 s.
 */
function closeStream(stream: { end(): void; cancel(): void }): void {
  try {
    stream.end();
  } catch {
    // already ended
  }
  stream.cancel();
}

function toCompare(compare: Compare): ICompare {
  requireKey(compare.key);
  const key = Buffer.from(compare.key);
  if ('absent' in compare) return { key, target: 'Create', result: 'Equal', create_revision: 0 };
  if ('modRevision' in compare) return { key, target: 'Mod', result: 'Equal', mod_revision: compare.modRevision };
  return { key, target: 'Version', result: 'Equal', version: compare.version };
}

function toRequestOp(op: TxnOp): IRequestOp {
  requireKey(op.key);
  if (op.type === 'delete') return { request_delete_range: { key: Buffer.from(op.key) } };
  return { request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease ?? 0 } };
}

function mapLeaseError(err: unknown, lease: string | undefined): unknown {
  if (err instanceof EtcdLeaseInvalidError || /lease not found/.test(String(err))) return new LeaseNotFoundError(lease ?? '?');
  return err;
}

// grpc-js reports a failed handshake only as text inside UNAVAILABLE ("No connection established. Last error: ..."):
// OpenSSL's alert names when etcd refused our certificate, Node's verify codes when we refused etcd's.
const TLS_REFUSED_BY_ETCD = /alert (bad certificate|certificate required|unknown ca|certificate unknown|certificate expired)/;
const TLS_REFUSED_BY_US = /(unable to verify[\w ]*|self[- ]signed certificate[\w ]*|certificate has expired|Hostname\/IP does not match certificate's altnames[^.]*|ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT)/;

/** The typed error for a failed TLS handshake, or undefined when `err` is something else. */
function tlsFailure(err: unknown): StoreTlsError | undefined {
  const text = String((err as Error)?.message ?? err);
  const ours = TLS_REFUSED_BY_ETCD.exec(text);
  if (ours) return new StoreTlsError('client-certificate', ours[0]);
  const theirs = TLS_REFUSED_BY_US.exec(text);
  if (theirs) return new StoreTlsError('server-certificate', theirs[0]);
  return undefined;
}

/** Reads one TLS file, failing with the setting that named it so the operator knows which path to fix. */
function readTlsFile(setting: SettingName, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StoreTlsFileError(setting, path, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
  }
}

function resolveTls(tls: EtcdTlsOptions | undefined): IOptions['credentials'] | undefined {
  if (tls === undefined) return undefined;
  const ca = tls.ca ?? (tls.caFile !== undefined ? readTlsFile(ETCD_SETTINGS.ca, tls.caFile) : undefined);
  if (ca === undefined) throw new StoreRequestError(`etcd TLS needs a CA certificate (tls.caFile or tls.ca; ${ETCD_SETTINGS.ca.flag} or env ${ETCD_SETTINGS.ca.env})`);
  const credentials: NonNullable<IOptions['credentials']> = { rootCertificate: ca };
  const cert = tls.cert ?? (tls.certFile !== undefined ? readTlsFile(ETCD_SETTINGS.cert, tls.certFile) : undefined);
  const key = tls.key ?? (tls.keyFile !== undefined ? readTlsFile(ETCD_SETTINGS.key, tls.keyFile) : undefined);
  if ((cert === undefined) !== (key === undefined)) {
    throw new StoreRequestError(`etcd client TLS needs both a certificate and its key (${ETCD_SETTINGS.cert.flag} and ${ETCD_SETTINGS.key.flag})`);
  }
  if (cert !== undefined) credentials.certChain = cert;
  if (key !== undefined) credentials.privateKey = key;
  return credentials;
}

/** A KvStore over an etcd 3.4 cluster. Built as given: openStore is where the TLS-by-default policy is applied. */
export class EtcdKvStore implements KvStore {
  private readonly client: Etcd3;
  private readonly watches = new Set<EtcdWatch>();
  private readonly callTimeoutMs: number;
  private closed = false;

  /** Connects lazily to the given endpoints. */
  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new StoreRequestError('etcd needs at least one endpoint');
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_ETCD_CALL_TIMEOUT_MS;
    if (!Number.isFinite(this.callTimeoutMs) || this.callTimeoutMs <= 0) {
      throw new StoreRequestError(`callTimeoutMs must be a positive number of milliseconds, got ${this.callTimeoutMs}`);
    }
    const scheme = options.tls !== undefined ? 'https' : 'http';
    const hosts = options.endpoints.map((e) => (/^[a-z]+:\/\//.test(e) ? e : `${scheme}://${e}`));
    const clientOptions: IOptions = {
      hosts,
      dialTimeout: options.dialTimeoutMs ?? 3000,
      // etcd3 opens a per-host circuit for 5 s after three failed calls (a missed deadline counts). With one
      // endpoint there is nothing to fail over to, so it would only turn an etcd that is back into 5 s of
      // refused calls; with several, a shorter break still skips a dead member without lingering.
      faultHandling: {
        host: () => (hosts.length === 1 ? noop : circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) })),
      },
    };
    const credentials = resolveTls(options.tls);
    if (credentials !== undefined) clientOptions.credentials = credentials;
    if (options.auth !== undefined) clientOptions.auth = { username: options.auth.username, password: options.auth.password };
    this.client = new Etcd3(clientOptions);
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** Runs one call under the call deadline. */
  private async call<T>(operation: string, work: (options: { deadline: Date }) => Promise<T>, onTimeout?: () => void): Promise<T> {
    try {
      return await withDeadline(operation, this.callTimeoutMs, (deadline) => work({ deadline }), onTimeout);
    } catch (err) {
      if (err instanceof Error && isBrokenCircuitError(err)) throw new StoreUnavailableError(operation);
      // The gRPC deadline and the timer are the same instant: whichever fires first, it is the same timeout.
      if (err instanceof GRPCDeadlineExceededError || (err as { code?: unknown }).code === grpcStatus.DEADLINE_EXCEEDED) {
        throw new StoreTimeoutError(operation, this.callTimeoutMs);
      }
      const tls = tlsFailure(err);
      if (tls) throw tls;
      // No endpoint took the connection (etcd down, or not up yet), and not for TLS: transient, as an open
      // breaker is. An agent starting meanwhile waits for it (retryTransient) instead of exiting.
      if (err instanceof GRPCUnavailableError) throw new StoreUnavailableError(operation, err.message);
      throw err;
    }
  }

  /** Reads one key. */
  async get(key: string): Promise<KeyValue | undefined> {
    this.ensureOpen();
    requireKey(key);
    const res = await this.call('get', (o) => this.client.kv.range({ key: Buffer.from(key) }, o));
    const kv = res.kvs[0];
    return kv === undefined ? undefined : toKeyValue(kv);
  }

  /** Writes one key. */
  async put(key: string, value: string, options: PutOptions = {}): Promise<number> {
    this.ensureOpen();
    requireKey(key);
    try {
      const res = await this.call('put', (o) => this.client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: options.lease ?? 0 }, o));
      return Number(res.header.revision);
    } catch (err) {
      throw mapLeaseError(err, options.lease);
    }
  }

  /** Deletes one key. */
  async delete(key: string): Promise<{ deleted: boolean; revision: number }> {
    this.ensureOpen();
    requireKey(key);
    const res = await this.call('delete', (o) => this.client.kv.deleteRange({ key: Buffer.from(key) }, o));
    return { deleted: Number(res.deleted) > 0, revision: Number(res.header.revision) };
  }

  /** Reads every key under a prefix at one revision. */
  async range(prefix: string): Promise<RangeResult> {
    this.ensureOpen();
    const res = await this.call('range', (o) => this.client.kv.range({ key: prefixKey(prefix), range_end: etcdPrefixRangeEnd(prefix) }, o));
    return { kvs: res.kvs.map(toKeyValue), revision: Number(res.header.revision) };
  }

  /** Atomic compare-and-swap. */
  async txn(request: TxnRequest): Promise<TxnResult> {
    this.ensureOpen();
    try {
      const txn = {
        compare: request.compare.map(toCompare),
        success: request.success.map(toRequestOp),
        failure: (request.failure ?? []).map(toRequestOp),
      };
      const res = await this.call('txn', (o) => this.client.kv.txn(txn, o));
      return { succeeded: res.succeeded, revision: Number(res.header.revision) };
    } catch (err) {
      const lease = [...request.success, ...(request.failure ?? [])].find((op) => op.type === 'put' && op.lease !== undefined);
      throw mapLeaseError(err, lease?.type === 'put' ? lease.lease : undefined);
    }
  }

  /** Watches a prefix; resolves once etcd created the watch. */
  async watch(prefix: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<WatchHandle> {
    this.ensureOpen();
    const current = await this.currentRevision();
    const from = options.fromRevision !== undefined && options.fromRevision > 0 ? options.fromRevision : current + 1;
    // etcd acknowledges a watch on compacted history as created and cancels it only afterwards, so ask first:
    // a read at that revision fails the same way, and start() can then reject instead of failing later.
    if (from <= current) await this.checkNotCompacted(from);
    const watch = new EtcdWatch(this.client, prefix, from, onEvent, options.onError, () => this.watches.delete(watch));
    this.watches.add(watch);
    try {
      await this.call('watch', () => watch.start(), () => watch.close());
    } catch (err) {
      watch.close();
      this.watches.delete(watch);
      throw err;
    }
    return { close: () => watch.close(), lastRevision: () => watch.next - 1 };
  }

  private async checkNotCompacted(revision: number): Promise<void> {
    try {
      await this.call('range', (o) => this.client.kv.range({ key: Buffer.from([0]), revision, limit: 1 }, o));
    } catch (err) {
      if (/compacted/.test(String(err))) throw new CompactedError(revision);
      throw err;
    }
  }

  /** Grants a lease (etcd rounds TTLs up to whole seconds and to its minimum TTL). */
  async grantLease(ttlSeconds: number): Promise<LeaseId> {
    this.ensureOpen();
    if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new StoreRequestError(`lease TTL must be a positive number of seconds, got ${ttlSeconds}`);
    const res = await this.call('grantLease', (o) => this.client.leaseClient.leaseGrant({ TTL: Math.ceil(ttlSeconds) }, o));
    if (res.error) throw new StoreRequestError(`etcd refused the lease: ${res.error}`);
    return String(res.ID);
  }

  /** Refreshes a lease once over a short-lived keepalive stream, within the call deadline. */
  async keepAlive(lease: LeaseId): Promise<void> {
    this.ensureOpen();
    let stream: IDuplexStream<{ ID: string }, { TTL: string }> | undefined;
    let timedOut = false;
    const refresh = async (o: { deadline: Date }): Promise<string> => {
      const opened = await this.client.leaseClient.leaseKeepAlive(o);
      // The deadline passed while the stream was being opened: nobody is waiting for it any more.
      if (timedOut) {
        closeStream(opened);
        return '0';
      }
      stream = opened;
      return new Promise<string>((resolve, reject) => {
        opened.on('data', (res: { TTL: string }) => resolve(res.TTL));
        opened.on('error', reject);
        opened.on('end', () => reject(new Error('etcd closed the keepalive stream')));
        opened.write({ ID: lease });
      });
    };
    try {
      const ttl = await this.call('keepAlive', refresh, () => {
        timedOut = true;
      });
      if (Number(ttl) <= 0) throw new LeaseNotFoundError(lease);
    } finally {
      if (stream !== undefined) closeStream(stream);
    }
  }

  /** Revokes a lease and deletes its keys; unknown leases are ignored. */
  async revokeLease(lease: LeaseId): Promise<void> {
    this.ensureOpen();
    try {
      await this.call('revokeLease', (o) => this.client.leaseClient.leaseRevoke({ ID: lease }, o));
    } catch (err) {
      if (!(mapLeaseError(err, lease) instanceof LeaseNotFoundError)) throw err;
    }
  }

  /** The current store revision. */
  async currentRevision(): Promise<number> {
    this.ensureOpen();
    const res = await this.call('currentRevision', (o) => this.client.kv.range({ key: Buffer.from([0]), limit: 1 }, o));
    return Number(res.header.revision);
  }

  /** Compacts etcd's history below `revision`. */
  async compact(revision: number): Promise<void> {
    this.ensureOpen();
    await this.call('compact', (o) => this.client.kv.compact({ revision, physical: true }, o));
  }

  /** Stops watches and closes the client. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of [...this.watches]) watch.close();
    this.client.close();
  }
}

/** One resumable watch over its own Watch stream, reconnecting with backoff from the last delivered revision. */
class EtcdWatch {
  next: number;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private closed = false;
  private established = false;
  private backoffMs = 50;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    from: number,
    private readonly onEvent: (event: WatchEvent) => void,
    private readonly onError: ((err: Error) => void) | undefined,
    private readonly onClosed: () => void,
  ) {
    this.next = from;
  }

  /** Establishes the first stream; resolves on creation, rejects on compaction or close. */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      void this.connect(settle);
    });
  }

  private async connect(settle: (err?: Error) => void): Promise<void> {
    if (this.closed) {
      settle(new StoreClosedError());
      return;
    }
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.client.watchClient.watch();
    } catch {
      this.retry(settle);
      return;
    }
    if (this.closed) {
      closeStream(stream);
      settle(new StoreClosedError());
      return;
    }
    this.stream = stream;
    let dead = false;
    const lost = (): void => {
      if (dead) return;
      dead = true;
      if (this.stream === stream) this.stream = undefined;
      closeStream(stream);
      if (!this.closed) this.retry(settle);
    };
    stream.on('error', lost);
    stream.on('end', lost);
    stream.on('data', (res: IWatchResponse) => {
      if (dead || this.closed) return;
      const compactRevision = Number(res.compact_revision);
      if (compactRevision > 0) {
        dead = true;
        closeStream(stream);
        this.fail(new CompactedError(this.next, compactRevision), settle);
        return;
      }
      if (res.canceled) {
        dead = true;
        closeStream(stream);
        this.fail(new Error(`etcd canceled the watch on ${this.prefix}: ${res.cancel_reason}`), settle);
        return;
      }
      if (res.created) {
        this.backoffMs = 50;
        this.established = true;
        settle();
        return;
      }
      if (res.events.length === 0) {
        // A progress notification: everything up to header.revision has been sent.
        this.next = Math.max(this.next, Number(res.header.revision) + 1);
        return;
      }
      for (const ev of res.events) {
        if (this.closed) return;
        const revision = Number(ev.kv.mod_revision);
        const event: WatchEvent =
          ev.type === 'Delete'
            ? { type: 'delete', key: ev.kv.key.toString(), modRevision: revision }
            : { type: 'put', key: ev.kv.key.toString(), value: ev.kv.value.toString(), modRevision: revision };
        this.next = revision + 1;
        try {
          this.onEvent(event);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    });
    stream.write({
      create_request: {
        key: prefixKey(this.prefix),
        range_end: etcdPrefixRangeEnd(this.prefix),
        start_revision: this.next,
        progress_notify: true,
      },
    });
  }

  private retry(settle: (err?: Error) => void): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 1000);
    setTimeout(() => void this.connect(settle), delay);
  }

  private fail(err: Error, settle: (err?: Error) => void): void {
    this.closed = true;
    this.onClosed();
    // Before creation the error rejects start(); afterwards it goes to onError (or is thrown, never swallowed).
    if (!this.established) settle(err);
    else if (this.onError) this.onError(err);
    else queueMicrotask(() => {
      throw err;
    });
  }

  /** Stops the watch. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    if (this.stream) closeStream(this.stream);
    this.stream = undefined;
  }
}
