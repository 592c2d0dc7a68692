// Typed store errors: callers switch on `code`, operators read `message`.

/** Base class of all store errors. */
export class StoreError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The store address could not be parsed or names an unknown backend. */
export class StoreAddressError extends StoreError {
  constructor(address: string, why: string) {
    super(
      'STORE_ADDRESS',
      `invalid store address ${JSON.stringify(address)}: ${why}; use sqlite:/path/to/state.db or etcd://host:port[,host:port]`,
    );
  }
}

/** A watch asked for revisions that compaction already removed (etcd's ErrCompacted). */
export class CompactedError extends StoreError {
  constructor(
    readonly requestedRevision: number,
    /** First revision still in history, when the backend says. */
    readonly compactRevision?: number,
  ) {
    super(
      'STORE_COMPACTED',
      `watch from revision ${requestedRevision} is impossible: history ${compactRevision !== undefined ? `before revision ${compactRevision} ` : 'there '}was compacted; re-read the state with range() and watch from its revision + 1`,
    );
  }
}

/** keepAlive on a lease that expired or was revoked. */
export class LeaseNotFoundError extends StoreError {
  constructor(readonly lease: string) {
    super('STORE_LEASE_NOT_FOUND', `lease ${lease} does not exist (expired or revoked); grant a new lease and re-put its keys`);
  }
}

/** An operation on a closed store handle. */
export class StoreClosedError extends StoreError {
  constructor() {
    super('STORE_CLOSED', 'the store handle is closed; open a new one with openStore()');
  }
}

/** A request the store cannot accept (bad key, bad TTL, ...). */
export class StoreRequestError extends StoreError {
  constructor(message: string) {
    super('STORE_REQUEST', message);
  }
}

/** Another process held the SQLite write lock for longer than the busy timeout. */
export class StoreBusyError extends StoreError {
  constructor(path: string, timeoutMs: number) {
    super('STORE_BUSY', `the store file ${path} stayed locked by another writer for ${timeoutMs} ms; check for a stuck meshnet process or raise busyTimeoutMs`);
  }
}

/** A store call got no answer in time (a hung or unreachable etcd); the call may or may not have taken effect. */
export class StoreTimeoutError extends StoreError {
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(
      'STORE_TIMEOUT',
      `store call ${operation} got no answer within ${timeoutMs} ms; check that etcd is reachable and healthy (etcdctl endpoint health), then retry`,
    );
  }
}

/** Every etcd endpoint failed its recent calls and is being skipped for a moment. */
export class StoreUnavailableError extends StoreError {
  constructor(readonly operation: string) {
    super('STORE_UNAVAILABLE', `store call ${operation} was not sent: every etcd endpoint failed its recent calls; check the etcd members' health, the call is retried after a second`);
  }
}
