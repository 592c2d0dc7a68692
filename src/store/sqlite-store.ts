import Database from 'better-sqlite3';
import { chmodSync, closeSync, mkdirSync, openSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
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
import { silentLogger, type Logger } from '../log/logger.js';
import { machineLeaseClock, type LeaseClock } from './lease-clock.js';
import { CompactedError, LeaseNotFoundError, StoreBusyError, StoreClosedError, StoreRequestError } from './store-errors.js';
import { isSqliteBusy } from './sqlite-busy.js';

// A kine-like store in one SQLite file shared by every agent process on a machine.
//  - `log` is append-only: one row per put or delete, its INTEGER PRIMARY KEY is the store revision. Watches poll
//    `revision >= next`; writers are serialized by BEGIN IMMEDIATE, so a reader never sees revision N+1 without N.
//  - `kv` is the current value of each live key, updated in the same transaction as the log row, so reads and
//    compare-and-swap never scan history and compaction may drop any log row below the kept window.
//  - `leases` holds each lease's deadline on the machine's monotonic clock with the boot it belongs to (see
//    lease-clock.ts: a wall-clock step must not expire every lease at once); whichever handle notices an expired
//    lease deletes its keys as ordinary delete events. `expires_at` (wall clock) is still written for meshnet
//    versions that only know it, and decides only for leases such a version granted and nobody renewed since.
//  - `meta.compact_revision`: log rows below it may be gone, so a watch from below it fails with CompactedError.
// Unlike etcd, every op of a multi-op txn gets its own revision; the txn result reports the last one.

const SCHEMA = `
CREATE TABLE IF NOT EXISTS log (
  revision INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  value TEXT,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease TEXT,
  deleted INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log(key, revision);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease) WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS leases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ttl_ms INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  boot TEXT,
  deadline_ms INTEGER
);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases(expires_at);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(name, value) VALUES ('compact_revision', 0);
`;

/** Tuning of one SQLite store handle. */
export interface SqliteStoreOptions {
  /** How often watches poll the log (ms). */
  pollIntervalMs?: number;
  /** How long a writer waits for another process's write lock (ms). */
  busyTimeoutMs?: number;
  /** The shortest wait between this handle's looks for expired leases (ms, default 200). */
  leaseSweepIntervalMs?: number;
  /** The longest wait between them (ms, default 1000, at least leaseSweepIntervalMs): what a lease granted elsewhere may wait to be seen. */
  leaseSweepMaxIntervalMs?: number;
  /** How often this handle compacts the log (ms); 0 disables periodic compaction. */
  compactIntervalMs?: number;
  /** How many recent revisions compaction keeps for watchers that are behind. */
  compactKeepRevisions?: number;
  /** A handle that could not reach the store for longer than this renews every lease before it expires any (default: 10 short or 3 long sweep waits, at least 3 s). */
  outageGapMs?: number;
  /** The clock leases expire by (tests; default: the machine's monotonic clock). */
  leaseClock?: LeaseClock;
  /** Where housekeeping failures go (default: nowhere). */
  log?: Logger;
}

/** Leases past their deadline: this boot's by the monotonic clock, earlier boots' always, legacy rows by wall clock. */
// Written with IS and IFNULL so no term is NULL: NOT (NULL) would make a legacy lease neither live nor expired.
const EXPIRED_LEASE =
  '(boot IS @boot AND IFNULL(deadline_ms, 0) <= @mono) OR (boot IS NOT NULL AND boot IS NOT @boot) OR (boot IS NULL AND expires_at <= @wall)';
/** Milliseconds until the first lease expires by EXPIRED_LEASE's rules (NULL: no lease). */
const NEXT_EXPIRY_MS =
  'SELECT MIN(CASE WHEN boot IS @boot THEN IFNULL(deadline_ms, 0) - @mono WHEN boot IS NULL THEN expires_at - @wall ELSE 0 END) AS ms FROM leases';

interface LeaseTime {
  boot: string;
  mono: number;
  wall: number;
}

interface KvRow {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease: string | null;
}

interface LogRow {
  revision: number;
  key: string;
  value: string | null;
  deleted: number;
}

interface SqliteWatcher {
  prefix: string;
  next: number;
  onEvent: (event: WatchEvent) => void;
  onError: ((err: Error) => void) | undefined;
  closed: boolean;
}

const WATCH_BATCH = 512;

/** Upper bound of a prefix scan: every key starting with `prefix` sorts below it (UTF-8 byte order). */
function prefixUpperBound(prefix: string): string {
  return `${prefix}\u{10FFFF}`;
}

function toKeyValue(row: KvRow): KeyValue {
  const kv: KeyValue = {
    key: row.key,
    value: row.value,
    modRevision: row.mod_revision,
    createRevision: row.create_revision,
    version: row.version,
  };
  if (row.lease !== null) kv.lease = row.lease;
  return kv;
}

// Every extended code counts: an agent starting beside two others on a loaded host died of an unretried
// SQLITE_BUSY_RECOVERY ("database is locked").
const isBusy = isSqliteBusy;

function requireKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new StoreRequestError('store keys must be non-empty strings');
}

/** Mode of state.db: it holds every service's command and environment. */
const DB_FILE_MODE = 0o600;

/**
 * Creates state.db as 0600 (in a 0700 directory when meshnet makes the directory; an existing one is the
 * operator's) before SQLite opens it: SQLite gives the -wal and -shm files the main file's mode. Files
 * an older meshnet left readable by others are tightened.
 */
function makePrivateDatabaseFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', DB_FILE_MODE));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      const mode = statSync(file).mode & 0o777;
      if (mode & 0o077) chmodSync(file, mode & DB_FILE_MODE);
    } catch {
      // no WAL or shared-memory file yet: SQLite makes it with the main file's mode
    }
  }
}

/** A KvStore over one SQLite file in WAL mode, safe to share between processes on one machine. */
export class SqliteKvStore implements KvStore {
  private readonly db: Database.Database;
  private readonly watchers = new Set<SqliteWatcher>();
  private readonly pollIntervalMs: number;
  private readonly compactKeepRevisions: number;
  private readonly busyTimeoutMs: number;
  private readonly leaseClock: LeaseClock;
  /** When this handle last reached the store (monotonic ms); null before the first sweep. */
  private lastReached: number | null = null;
  private readonly outageGapMs: number;
  private readonly log: Logger;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollSoon: NodeJS.Immediate | undefined;
  private walWatcher: FSWatcher | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Monotonic ms the pending sweep fires at. */
  private sweepAt = Infinity;
  private readonly sweepMinMs: number;
  private readonly sweepMaxMs: number;
  private readonly compactTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly stmt: {
    seq: Database.Statement<[], { seq: number }>;
    getKv: Database.Statement<[string], KvRow>;
    rangeKv: Database.Statement<[string, string], KvRow>;
    insertLog: Database.Statement<[number, string, string | null, number, number, number, string | null, number]>;
    upsertKv: Database.Statement<[string, string, number, number, number, string | null]>;
    deleteKv: Database.Statement<[string]>;
    keysOfLease: Database.Statement<[string], { key: string }>;
    leaseExists: Database.Statement<[number], { id: number }>;
    insertLease: Database.Statement<[{ ttl: number } & LeaseTime]>;
    renewLease: Database.Statement<[{ id: number } & LeaseTime]>;
    deleteLease: Database.Statement<[number]>;
    expiredLeases: Database.Statement<[LeaseTime], { id: number }>;
    nextExpiry: Database.Statement<[LeaseTime], { ms: number | null }>;
    extendLeases: Database.Statement<[LeaseTime]>;
    compactRevision: Database.Statement<[], { value: number }>;
    setCompactRevision: Database.Statement<[number]>;
    deleteLogBelow: Database.Statement<[number]>;
    logSince: Database.Statement<[number, string, string, number], LogRow>;
  };

  /** Opens (creating if needed) the store file at `path`. */
  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 25;
    this.compactKeepRevisions = options.compactKeepRevisions ?? 10_000;
    if (path !== ':memory:') makePrivateDatabaseFile(path);
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.leaseClock = options.leaseClock ?? machineLeaseClock();
    this.sweepMinMs = options.leaseSweepIntervalMs ?? 200;
    this.sweepMaxMs = Math.max(this.sweepMinMs, options.leaseSweepMaxIntervalMs ?? 1000);
    this.outageGapMs = options.outageGapMs ?? Math.max(3000, 10 * this.sweepMinMs, 3 * this.sweepMaxMs);
    this.log = options.log ?? silentLogger();
    // SQLite's own busy handler backs off to 100 ms sleeps, which under steady multi-process contention idles
    // writers most of the time; `write` retries with short jittered sleeps instead.
    this.db = new Database(path, { timeout: 0 });
    this.initialise();
    this.stmt = {
      seq: this.db.prepare(`SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0) AS seq`),
      getKv: this.db.prepare('SELECT * FROM kv WHERE key = ?'),
      rangeKv: this.db.prepare('SELECT * FROM kv WHERE key >= ? AND key < ? ORDER BY key'),
      insertLog: this.db.prepare(
        'INSERT INTO log(revision, key, value, create_revision, prev_revision, version, lease, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      upsertKv: this.db.prepare(
        'INSERT OR REPLACE INTO kv(key, value, create_revision, mod_revision, version, lease) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      deleteKv: this.db.prepare('DELETE FROM kv WHERE key = ?'),
      keysOfLease: this.db.prepare('SELECT key FROM kv WHERE lease = ? ORDER BY key'),
      leaseExists: this.db.prepare('SELECT id FROM leases WHERE id = ?'),
      insertLease: this.db.prepare('INSERT INTO leases(ttl_ms, expires_at, boot, deadline_ms) VALUES (@ttl, @wall + @ttl, @boot, @mono + @ttl)'),
      renewLease: this.db.prepare(
        `UPDATE leases SET expires_at = @wall + ttl_ms, boot = @boot, deadline_ms = @mono + ttl_ms WHERE id = @id AND NOT (${EXPIRED_LEASE})`,
      ),
      deleteLease: this.db.prepare('DELETE FROM leases WHERE id = ?'),
      extendLeases: this.db.prepare('UPDATE leases SET expires_at = MAX(expires_at, @wall + ttl_ms), deadline_ms = MAX(IFNULL(deadline_ms, 0), @mono + ttl_ms) WHERE boot IS @boot OR boot IS NULL'),
      expiredLeases: this.db.prepare(`SELECT id FROM leases WHERE ${EXPIRED_LEASE} ORDER BY id`),
      nextExpiry: this.db.prepare(NEXT_EXPIRY_MS),
      compactRevision: this.db.prepare(`SELECT value FROM meta WHERE name = 'compact_revision'`),
      setCompactRevision: this.db.prepare(`UPDATE meta SET value = ? WHERE name = 'compact_revision'`),
      deleteLogBelow: this.db.prepare('DELETE FROM log WHERE revision < ?'),
      logSince: this.db.prepare(
        'SELECT revision, key, value, deleted FROM log WHERE revision >= ? AND key >= ? AND key < ? ORDER BY revision LIMIT ?',
      ),
    };
    this.scheduleSweep(this.sweepMinMs);
    const compactEvery = options.compactIntervalMs ?? 60_000;
    if (compactEvery > 0) {
      this.compactTimer = setInterval(() => this.safely(() => this.compactWindow()), compactEvery);
      this.compactTimer.unref();
    }
  }

  private initialise(): void {
    // Another process may be creating the schema or switching to WAL at the same moment: WAL switching takes
    // an exclusive lock that busy_timeout does not always cover, so retry briefly.
    const deadline = Date.now() + this.busyTimeoutMs;
    for (;;) {
      try {
        this.db.pragma('journal_mode = WAL');
        this.db.pragma('synchronous = NORMAL');
        this.db.transaction(() => {
          this.db.exec(SCHEMA);
          this.addLeaseClockColumns();
        }).immediate();
        return;
      } catch (err) {
        if (!isBusy(err) || Date.now() > deadline) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2 + Math.random() * 5);
      }
    }
  }

  /** Files made before leases ran on the monotonic clock get its columns; their old rows keep wall-clock expiry until renewed. */
  private addLeaseClockColumns(): void {
    const columns = new Set(this.db.prepare<[], { name: string }>('PRAGMA table_info(leases)').all().map((c) => c.name));
    if (!columns.has('boot')) this.db.exec('ALTER TABLE leases ADD COLUMN boot TEXT');
    if (!columns.has('deadline_ms')) this.db.exec('ALTER TABLE leases ADD COLUMN deadline_ms INTEGER');
  }

  private leaseTime(): LeaseTime {
    return { boot: this.leaseClock.bootId, mono: this.leaseClock.nowMs(), wall: Date.now() };
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  private safely(work: () => Promise<void>): void {
    if (this.closed) return;
    work().catch((err: unknown) => {
      // Housekeeping retries on its next tick; a busy or closed database is not an error worth surfacing.
      if (this.closed || isBusy(err)) return;
      this.log.warn({ event: 'store.sqlite.housekeeping_failed', path: this.path, error: String(err) });
    });
  }

  /** Runs a read, retrying briefly (synchronously) in the rare case WAL recovery makes it busy. */
  private reading<T>(work: () => T): T {
    const deadline = Date.now() + this.busyTimeoutMs;
    for (;;) {
      try {
        return this.db.transaction(work)();
      } catch (err) {
        if (!isBusy(err) || Date.now() > deadline) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
      }
    }
  }

  private currentSeq(): number {
    return this.stmt.seq.get()?.seq ?? 0;
  }

  // ---- writes (always inside an IMMEDIATE transaction) ----

  private putRow(key: string, value: string, lease: string | null): number {
    if (lease !== null && this.stmt.leaseExists.get(Number(lease)) === undefined) throw new LeaseNotFoundError(lease);
    const existing = this.stmt.getKv.get(key);
    const revision = this.currentSeq() + 1;
    const createRevision = existing?.create_revision ?? revision;
    const version = (existing?.version ?? 0) + 1;
    this.stmt.insertLog.run(revision, key, value, createRevision, existing?.mod_revision ?? 0, version, lease, 0);
    this.stmt.upsertKv.run(key, value, createRevision, revision, version, lease);
    return revision;
  }

  private deleteRow(key: string): boolean {
    const existing = this.stmt.getKv.get(key);
    if (existing === undefined) return false;
    const revision = this.currentSeq() + 1;
    this.stmt.insertLog.run(revision, key, null, existing.create_revision, existing.mod_revision, 0, null, 1);
    this.stmt.deleteKv.run(key);
    return true;
  }

  private applyOp(op: TxnOp): void {
    requireKey(op.key);
    if (op.type === 'put') this.putRow(op.key, op.value, op.lease ?? null);
    else this.deleteRow(op.key);
  }

  private holds(compare: Compare): boolean {
    requireKey(compare.key);
    const row = this.stmt.getKv.get(compare.key);
    if ('absent' in compare) return row === undefined;
    if ('modRevision' in compare) return (row?.mod_revision ?? 0) === compare.modRevision;
    return (row?.version ?? 0) === compare.version;
  }

  private async write<T>(work: () => T): Promise<T> {
    this.ensureOpen();
    const deadline = Date.now() + this.busyTimeoutMs;
    for (;;) {
      try {
        const result = this.db.transaction(work).immediate();
        this.schedulePoll();
        return result;
      } catch (err) {
        if (!isBusy(err)) throw err;
        if (Date.now() > deadline) throw new StoreBusyError(this.path, this.busyTimeoutMs);
        await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
        this.ensureOpen();
      }
    }
  }

  private revokeLeaseRows(id: number): void {
    for (const { key } of this.stmt.keysOfLease.all(String(id))) this.deleteRow(key);
    this.stmt.deleteLease.run(id);
  }

  /**
   * Deletes the keys of every expired lease (as delete events) and the leases themselves. After a gap
   * in which this handle could not reach the store (locked, or the process stalled), every lease is
   * first given its full TTL again, as etcd's lessor does when a new leader takes over: holders could
   * not renew while the store was away, so their leases must not all lapse the moment it returns.
   */
  /**
   * Sweeps when the first lease is due, never sooner than the shortest wait nor later than the longest:
   * a timer every 200 ms woke every idle agent five times a second to find nothing. A lease granted by
   * another process is seen within the longest wait (1 s) and, its TTL being longer, swept on time.
   */
  private scheduleSweep(delayMs: number): void {
    if (this.closed) return;
    const at = this.leaseClock.nowMs() + delayMs;
    if (this.sweepTimer !== undefined && this.sweepAt <= at) return;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweepAt = Infinity;
      if (this.closed) return;
      this.sweepExpiredLeases().then(
        () => this.scheduleSweep(this.nextSweepDelay()),
        // Housekeeping retries soon; a busy or closed database is not an error worth surfacing.
        () => this.scheduleSweep(this.sweepMinMs),
      );
    }, delayMs);
    this.sweepTimer.unref();
  }

  private nextSweepDelay(): number {
    if (this.closed) return this.sweepMaxMs;
    let ms: number | null;
    try {
      ms = this.reading(() => this.stmt.nextExpiry.get(this.leaseTime())?.ms ?? null);
    } catch {
      return this.sweepMinMs;
    }
    return ms === null ? this.sweepMaxMs : Math.min(this.sweepMaxMs, Math.max(this.sweepMinMs, ms));
  }

  async sweepExpiredLeases(): Promise<void> {
    if (this.closed) return;
    await this.extendLeasesAfterGap();
    if (this.reading(() => this.stmt.expiredLeases.all(this.leaseTime())).length === 0) {
      this.lastReached = this.leaseClock.nowMs();
      return;
    }
    await this.write(() => {
      for (const { id } of this.stmt.expiredLeases.all(this.leaseTime())) this.revokeLeaseRows(id);
    });
    this.lastReached = this.leaseClock.nowMs();
  }

  /** Gives every lease its TTL again when this handle has not reached the store for longer than the gap. */
  private async extendLeasesAfterGap(): Promise<void> {
    const now = this.leaseClock.nowMs();
    if (this.lastReached === null || now - this.lastReached <= this.outageGapMs) return;
    const gapMs = now - this.lastReached;
    const extended = await this.write(() => this.stmt.extendLeases.run(this.leaseTime()).changes);
    this.lastReached = this.leaseClock.nowMs();
    this.log.warn({ event: 'store.leases_extended', leases: extended, gapMs, why: 'the store was out of reach; leases get their TTL again instead of all lapsing at once' });
  }

  private async compactWindow(): Promise<void> {
    const target = this.reading(() => this.currentSeq()) - this.compactKeepRevisions;
    if (target > (this.reading(() => this.stmt.compactRevision.get()?.value) ?? 0)) await this.compactNow(target);
  }

  private async compactNow(revision: number): Promise<void> {
    await this.write(() => {
      const current = this.stmt.compactRevision.get()?.value ?? 0;
      const target = Math.min(revision, this.currentSeq() + 1);
      if (target <= current) return;
      this.stmt.deleteLogBelow.run(target);
      this.stmt.setCompactRevision.run(target);
    });
  }

  // ---- KvStore ----

  /** Reads one key. */
  async get(key: string): Promise<KeyValue | undefined> {
    this.ensureOpen();
    requireKey(key);
    const row = this.reading(() => this.stmt.getKv.get(key));
    return row === undefined ? undefined : toKeyValue(row);
  }

  /** Writes one key. */
  async put(key: string, value: string, options: PutOptions = {}): Promise<number> {
    requireKey(key);
    return this.write(() => this.putRow(key, value, options.lease ?? null));
  }

  /** Deletes one key. */
  async delete(key: string): Promise<{ deleted: boolean; revision: number }> {
    requireKey(key);
    return this.write(() => ({ deleted: this.deleteRow(key), revision: this.currentSeq() }));
  }

  /** Reads every key under a prefix at one revision. */
  async range(prefix: string): Promise<RangeResult> {
    this.ensureOpen();
    return this.reading(() => ({
      kvs: this.stmt.rangeKv.all(prefix, prefixUpperBound(prefix)).filter((r) => r.key.startsWith(prefix)).map(toKeyValue),
      revision: this.currentSeq(),
    }));
  }

  /** Atomic compare-and-swap. */
  async txn(request: TxnRequest): Promise<TxnResult> {
    return this.write(() => {
      const succeeded = request.compare.every((c) => this.holds(c));
      for (const op of succeeded ? request.success : (request.failure ?? [])) this.applyOp(op);
      return { succeeded, revision: this.currentSeq() };
    });
  }

  /** Watches a prefix from a revision by polling the log. */
  async watch(prefix: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<WatchHandle> {
    this.ensureOpen();
    const { next, compact } = this.reading(() => ({
      next: options.fromRevision !== undefined && options.fromRevision > 0 ? options.fromRevision : this.currentSeq() + 1,
      compact: this.stmt.compactRevision.get()?.value ?? 0,
    }));
    if (next < compact) throw new CompactedError(next, compact);
    const watcher: SqliteWatcher = { prefix, next, onEvent, onError: options.onError, closed: false };
    this.watchers.add(watcher);
    this.ensurePolling();
    this.schedulePoll();
    return {
      close: () => {
        watcher.closed = true;
        this.watchers.delete(watcher);
        this.stopPollingIfIdle();
      },
      lastRevision: () => watcher.next - 1,
    };
  }

  private ensurePolling(): void {
    if (this.pollTimer !== undefined) return;
    // Every commit of any process writes the WAL file: inotify on it wakes the watchers within a
    // millisecond or two, so the timer only backs it up (every 2 s) and an idle agent wakes on commits
    // instead of forty times a second. Without the file (a store not in WAL mode yet, or :memory:) the timer polls fast.
    let interval = this.pollIntervalMs;
    if (this.path !== ':memory:' && this.walWatcher === undefined) {
      try {
        this.walWatcher = watch(`${this.path}-wal`, { persistent: false }, () => this.schedulePoll());
        this.walWatcher.on('error', () => undefined);
        interval = Math.max(this.pollIntervalMs, 2000);
      } catch {
        this.walWatcher = undefined;
      }
    }
    this.pollTimer = setInterval(() => this.poll(), interval);
  }

  private stopPollingIfIdle(): void {
    if (this.watchers.size > 0) return;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.walWatcher?.close();
    this.walWatcher = undefined;
  }

  private schedulePoll(): void {
    // Writes from this handle wake its own watchers at once; other processes see them on their next poll.
    if (this.watchers.size === 0 || this.pollSoon !== undefined) return;
    this.pollSoon = setImmediate(() => {
      this.pollSoon = undefined;
      this.poll();
    });
  }

  private poll(): void {
    if (this.closed) return;
    // Most commits that wake a poll are other processes' lease renewals, which write no revision: one
    // read of the newest revision then stands in for a transaction of three statements per watcher.
    let behind = false;
    try {
      const seq = this.currentSeq();
      for (const w of this.watchers) behind ||= w.next <= seq;
    } catch (err) {
      if (isBusy(err)) return;
      // Anything else: each watcher's own read below meets it and fails that watcher with it.
      behind = true;
    }
    if (!behind) return;
    for (const watcher of [...this.watchers]) {
      try {
        this.pollWatcher(watcher);
      } catch (err) {
        if (isBusy(err)) continue;
        this.failWatcher(watcher, err as Error);
      }
    }
  }

  private failWatcher(watcher: SqliteWatcher, err: Error): void {
    watcher.closed = true;
    this.watchers.delete(watcher);
    this.stopPollingIfIdle();
    if (watcher.onError) watcher.onError(err);
    else queueMicrotask(() => { throw err; });
  }

  private pollWatcher(watcher: SqliteWatcher): void {
    for (;;) {
      if (watcher.closed) return;
      const batch = this.db.transaction(() => {
        const compact = this.stmt.compactRevision.get()?.value ?? 0;
        if (watcher.next < compact) throw new CompactedError(watcher.next, compact);
        const rows = this.stmt.logSince.all(watcher.next, watcher.prefix, prefixUpperBound(watcher.prefix), WATCH_BATCH);
        return { rows, seq: this.currentSeq() };
      })();
      for (const row of batch.rows) {
        if (watcher.closed) return;
        watcher.next = row.revision + 1;
        if (!row.key.startsWith(watcher.prefix)) continue;
        const event: WatchEvent =
          row.deleted === 1
            ? { type: 'delete', key: row.key, modRevision: row.revision }
            : { type: 'put', key: row.key, value: row.value ?? '', modRevision: row.revision };
        try {
          watcher.onEvent(event);
        } catch (err) {
          queueMicrotask(() => { throw err; });
        }
      }
      if (batch.rows.length < WATCH_BATCH) {
        // Nothing else under this prefix up to `seq`: skip ahead so a later compaction of unrelated
        // revisions does not fail an idle watcher.
        watcher.next = Math.max(watcher.next, batch.seq + 1);
        return;
      }
    }
  }

  /** Grants a lease. */
  async grantLease(ttlSeconds: number): Promise<LeaseId> {
    if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new StoreRequestError(`lease TTL must be a positive number of seconds, got ${ttlSeconds}`);
    const ttlMs = Math.round(ttlSeconds * 1000);
    const id = await this.write(() => String(this.stmt.insertLease.run({ ttl: ttlMs, ...this.leaseTime() }).lastInsertRowid));
    // A lease shorter than the sweep's longest wait is swept on time too.
    this.scheduleSweep(Math.max(this.sweepMinMs, ttlMs));
    return id;
  }

  /** Refreshes a lease once. */
  async keepAlive(lease: LeaseId): Promise<void> {
    this.ensureOpen();
    await this.extendLeasesAfterGap();
    const changes = await this.write(() => this.stmt.renewLease.run({ id: Number(lease), ...this.leaseTime() }).changes);
    if (changes === 0) throw new LeaseNotFoundError(lease);
  }

  /** Revokes a lease and deletes its keys. */
  async revokeLease(lease: LeaseId): Promise<void> {
    await this.write(() => this.revokeLeaseRows(Number(lease)));
  }

  /** The current store revision. */
  async currentRevision(): Promise<number> {
    this.ensureOpen();
    return this.reading(() => this.currentSeq());
  }

  /** Drops log rows below `revision`; watches from below it then fail with CompactedError. */
  async compact(revision: number): Promise<void> {
    await this.compactNow(revision);
  }

  /** Closes the handle. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watcher of this.watchers) watcher.closed = true;
    this.watchers.clear();
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.walWatcher?.close();
    this.walWatcher = undefined;
    if (this.pollSoon !== undefined) clearImmediate(this.pollSoon);
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    if (this.compactTimer !== undefined) clearInterval(this.compactTimer);
    this.db.close();
  }
}
