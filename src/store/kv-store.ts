// The one contract every state backend (embedded SQLite, etcd) implements. Values are opaque strings: the model
// layer writes validated JSON. Revisions are store-wide, strictly increasing integers as in etcd; a watch resumes
// from `lastSeen + 1` so no event is lost across a reconnect.

/** A lease id: a decimal string, because etcd lease ids are 64-bit and do not fit a JS number. */
export type LeaseId = string;

/** One live key with its revision bookkeeping (same meaning as etcd's mvccpb.KeyValue). */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the last write to this key. */
  modRevision: number;
  /** Revision at which this incarnation of the key was created. */
  createRevision: number;
  /** Number of writes since creation (1 after the first put). */
  version: number;
  lease?: LeaseId;
}

/** The result of a prefix read: the keys and the store revision they were read at. */
export interface RangeResult {
  kvs: KeyValue[];
  revision: number;
}

/** A txn guard. `absent: true` holds when the key does not exist. */
export type Compare =
  | { key: string; modRevision: number }
  | { key: string; version: number }
  | { key: string; absent: true };

/** A write inside a txn. */
export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: LeaseId }
  | { type: 'delete'; key: string };

/** Compare-and-swap: all `compare` hold → `success` runs, else `failure` (if any), atomically. */
export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

/** Outcome of a txn and the store revision after it. */
export interface TxnResult {
  succeeded: boolean;
  revision: number;
}

/** One change seen by a watch. `value` is absent on deletes. */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  modRevision: number;
}

/** Options of a watch. Without `fromRevision` the watch starts after the current revision. */
export interface WatchOptions {
  fromRevision?: number;
  /** Called on a fatal watch error (e.g. CompactedError); the watch is closed afterwards. */
  onError?: (err: Error) => void;
}

/** A running watch. */
export interface WatchHandle {
  close(): void;
  /** Revision of the last event delivered (or fromRevision - 1 when none yet). */
  lastRevision(): number;
}

/** Options of a put. */
export interface PutOptions {
  lease?: LeaseId;
}

/** A revisioned key-value store with leases and ordered, resumable watches. */
export interface KvStore {
  /** Reads one key, or undefined when absent. */
  get(key: string): Promise<KeyValue | undefined>;
  /** Writes one key; returns the new store revision. */
  put(key: string, value: string, options?: PutOptions): Promise<number>;
  /** Deletes one key; returns whether it existed and the store revision after. */
  delete(key: string): Promise<{ deleted: boolean; revision: number }>;
  /** Reads every key starting with `prefix`, sorted by key, at one revision. */
  range(prefix: string): Promise<RangeResult>;
  /** Atomic compare-and-swap. */
  txn(request: TxnRequest): Promise<TxnResult>;
  /**
   * Watches keys starting with `prefix`, delivering events in revision order. Resolves once the watch is
   * established; rejects with CompactedError when `fromRevision` was compacted away.
   */
  watch(prefix: string, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<WatchHandle>;
  /** Grants a lease that expires `ttlSeconds` after its last keepalive. */
  grantLease(ttlSeconds: number): Promise<LeaseId>;
  /** Refreshes a lease once; throws LeaseNotFoundError when it already expired. */
  keepAlive(lease: LeaseId): Promise<void>;
  /** Revokes a lease, deleting its keys (as delete events). Unknown leases are ignored. */
  revokeLease(lease: LeaseId): Promise<void>;
  /** The current store revision. */
  currentRevision(): Promise<number>;
  /** Discards history below `revision`; watches from below it then fail with CompactedError. */
  compact(revision: number): Promise<void>;
  /** Releases the handle: stops watches and timers, closes connections. */
  close(): Promise<void>;
}
