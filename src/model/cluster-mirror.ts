import type { KvStore, WatchEvent, WatchHandle } from '../store/kv-store.js';
import { CompactedError } from '../store/store-errors.js';
import type { Logger } from '../log/logger.js';
import type { ClusterSnapshot } from './cluster.js';
import * as keys from './keys.js';
import type { NetworkRecord, NodeInfoRecord, NodeRecord, ServiceRecord, TaskRecord } from './records.js';
import { decodeSnapshotEntry, recordKindOf, type SnapshotEntry } from './snapshot-entry.js';

/** A decoded record with the stored text it came from: an unchanged value keeps its decoded object. */
type Entry = Extract<SnapshotEntry, { record: unknown }> & { value: string };

/** A stored record that failed validation; the mirror keeps serving the last valid version of its key. */
export interface InvalidRecord {
  key: string;
  error: string;
  /** True when an earlier valid version is still in use for this key. */
  keptPrevious: boolean;
}

function byServiceThenSlot(a: TaskRecord, b: TaskRecord): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  return a.slot - b.slot;
}

/** Options of a ClusterMirror. */
export interface ClusterMirrorOptions {
  log: Logger;
  /** Called after the mirror changed (batched per watch callback), so the agent can run a pass. */
  onChange: () => void;
  /** Delay before setting a failed watch up again (doubles up to 5 s while the store stays away). */
  retryMs?: number;
  /** Other key prefixes under /meshnet/ to keep as raw values (records the model does not own). */
  rawPrefixes?: readonly string[];
}

/**
 * The cluster's intent as the agent sees it, kept up to date by one watch instead of a full read per
 * pass. Three properties the agent relies on:
 * - an unchanged record keeps the same object across snapshots, so planning can skip it by identity;
 * - a record that fails validation never reads as a deletion: the last valid version stays in force
 *   and the failure is reported in `invalid` (a newer writer, one bad write);
 * - while the store is unreachable the mirror keeps its last state and says so (`connected`); it
 *   catches up from its last revision when the store returns, or re-reads everything when that
 *   history was compacted away.
 */
export class ClusterMirror {
  private readonly entries = new Map<string, Entry>();
  private readonly invalidByKey = new Map<string, InvalidRecord>();
  private readonly raws = new Map<string, Map<string, string>>();
  private watch: WatchHandle | null = null;
  private revision = 0;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs: number;
  private cached: ClusterSnapshot | null = null;
  /** False from a watch failure until the watch is set up again. */
  connected = false;

  private constructor(
    private readonly store: KvStore,
    private readonly opts: ClusterMirrorOptions,
  ) {
    this.retryMs = opts.retryMs ?? 500;
    for (const p of opts.rawPrefixes ?? []) this.raws.set(p, new Map());
  }

  /** Raw values under one of `rawPrefixes`, by key. */
  raw(prefix: string): ReadonlyMap<string, string> {
    return this.raws.get(prefix) ?? new Map();
  }

  private rawMapOf(key: string): Map<string, string> | undefined {
    for (const [prefix, map] of this.raws) if (key.startsWith(prefix)) return map;
    return undefined;
  }

  /** Reads the whole intent once and starts following it. */
  static async open(store: KvStore, opts: ClusterMirrorOptions): Promise<ClusterMirror> {
    const mirror = new ClusterMirror(store, opts);
    await mirror.relist();
    await mirror.follow();
    return mirror;
  }

  /** The store revision the mirror has seen up to. */
  get seenRevision(): number {
    return this.revision;
  }

  /** Records that failed validation, by key. */
  get invalid(): InvalidRecord[] {
    return [...this.invalidByKey.values()];
  }

  /** The intent as plain data; the same object until something changes. */
  snapshot(): ClusterSnapshot {
    if (this.cached) return this.cached;
    const snap: ClusterSnapshot = { revision: this.revision, nodes: [], nodeInfo: [], networks: [], services: [], tasks: [], invalid: this.invalid.map(({ key, error }) => ({ key, error })) };
    for (const e of this.entries.values()) {
      if (e.kind === 'node') snap.nodes.push(e.record as NodeRecord);
      else if (e.kind === 'node-info') snap.nodeInfo.push(e.record as NodeInfoRecord);
      else if (e.kind === 'network') snap.networks.push(e.record as NetworkRecord);
      else if (e.kind === 'service') snap.services.push(e.record as ServiceRecord);
      else snap.tasks.push(e.record as TaskRecord);
    }
    const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    snap.nodes.sort(byId);
    snap.nodeInfo.sort(byId);
    snap.networks.sort(byName);
    snap.services.sort(byName);
    snap.tasks.sort(byServiceThenSlot);
    this.cached = snap;
    return snap;
  }

  /** Re-reads everything (start, compaction, and the agent's periodic resync); unchanged records keep their objects. */
  async relist(): Promise<void> {
    const { kvs, revision } = await this.store.range(keys.ROOT);
    const seen = new Set<string>();
    let changed = false;
    const rawSeen = new Set<string>();
    for (const kv of kvs) {
      const raw = this.rawMapOf(kv.key);
      if (raw) {
        rawSeen.add(kv.key);
        if (raw.get(kv.key) !== kv.value) {
          raw.set(kv.key, kv.value);
          changed = true;
        }
        continue;
      }
      if (!recordKindOf(kv.key)) continue;
      seen.add(kv.key);
      changed = this.put(kv.key, kv.value) || changed;
    }
    for (const key of [...this.entries.keys()]) {
      if (!seen.has(key)) changed = this.remove(key) || changed;
    }
    for (const key of [...this.invalidByKey.keys()]) if (!seen.has(key)) this.invalidByKey.delete(key);
    for (const map of this.raws.values()) {
      for (const key of [...map.keys()]) {
        if (!rawSeen.has(key)) {
          map.delete(key);
          changed = true;
        }
      }
    }
    this.revision = Math.max(this.revision, revision);
    if (changed) this.changed();
  }

  private async follow(): Promise<void> {
    if (this.closed) return;
    const watch = await this.store.watch(keys.ROOT, { fromRevision: this.revision + 1, onError: (err) => this.onWatchError(err) }, (ev) => this.onEvent(ev));
    if (this.closed) {
      watch.close();
      return;
    }
    this.watch = watch;
    this.connected = true;
    this.retryMs = this.opts.retryMs ?? 500;
  }

  private onEvent(ev: WatchEvent): void {
    this.revision = Math.max(this.revision, ev.modRevision);
    const raw = this.rawMapOf(ev.key);
    if (raw) {
      if (ev.type === 'put' && ev.value !== undefined) raw.set(ev.key, ev.value);
      else raw.delete(ev.key);
      this.opts.onChange();
      return;
    }
    if (!recordKindOf(ev.key)) return;
    const changed = ev.type === 'put' && ev.value !== undefined ? this.put(ev.key, ev.value) : this.remove(ev.key);
    if (changed) this.changed();
  }

  private onWatchError(err: Error): void {
    this.watch?.close();
    this.watch = null;
    if (this.closed) return;
    this.connected = false;
    this.opts.log.warn({ event: 'store.watch_failed', error: err.message, retryInMs: this.retryMs });
    this.scheduleRetry(err instanceof CompactedError);
  }

  private scheduleRetry(relist: boolean): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void (async () => {
        if (relist) await this.relist();
        await this.follow();
        this.opts.log.info({ event: 'store.watch_restored', revision: this.revision });
        this.opts.onChange();
      })().catch((err: Error) => {
        this.opts.log.warn({ event: 'store.watch_failed', error: err.message, retryInMs: this.retryMs });
        this.retryMs = Math.min(this.retryMs * 2, 5_000);
        this.scheduleRetry(relist || err instanceof CompactedError);
      });
    }, this.retryMs);
    this.retryTimer.unref?.();
  }

  /** Applies one stored value; false when nothing the agent sees changed. */
  private put(key: string, value: string): boolean {
    const had = this.entries.get(key);
    if (had && had.value === value) {
      return this.invalidByKey.delete(key);
    }
    const entry = decodeSnapshotEntry(key, value)!;
    if ('record' in entry) {
      this.entries.set(key, { ...entry, value } as Entry);
      this.invalidByKey.delete(key);
      return true;
    }
    const error = entry.invalid.error;
    const before = this.invalidByKey.get(key);
    this.invalidByKey.set(key, { key, error, keptPrevious: had !== undefined });
    if (before?.error !== error) {
      this.opts.log.error({ event: 'store.record_invalid', key, error, keptPrevious: had !== undefined, hint: had ? 'the last valid version stays in force; rewrite the record with a valid value' : 'the record is ignored until it is valid' });
    }
    this.cached = null;
    return before === undefined;
  }

  private remove(key: string): boolean {
    const existed = this.entries.delete(key);
    const wasInvalid = this.invalidByKey.delete(key);
    return existed || wasInvalid;
  }

  private changed(): void {
    this.cached = null;
    this.opts.onChange();
  }

  /** Stops following the store. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watch?.close();
    this.watch = null;
  }
}
