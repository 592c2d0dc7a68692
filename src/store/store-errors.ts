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
  /** `unreachable`: etcd's own words when no endpoint took the connection; without it, the breakers were open. */
  constructor(
    readonly operation: string,
    unreachable?: string,
  ) {
    super(
      'STORE_UNAVAILABLE',
      unreachable === undefined
        ? `store call ${operation} was not sent: every etcd endpoint failed its recent calls; check the etcd members' health, the call is retried after a second`
        : `store call ${operation} failed: no etcd endpoint could be reached (${unreachable}); check that etcd runs and listens at the --store address`,
    );
  }
}

/** Which operator setting supplies one piece of etcd security: its flag and its environment variable. */
export interface SettingName {
  flag: string;
  env: string;
}

/** The etcd security settings by name; errors quote them so the operator knows exactly what to give. */
export const ETCD_SETTINGS = {
  ca: { flag: '--etcd-cacert', env: 'MESHNET_ETCD_CA' },
  cert: { flag: '--etcd-cert', env: 'MESHNET_ETCD_CERT' },
  key: { flag: '--etcd-key', env: 'MESHNET_ETCD_KEY' },
  user: { flag: '--etcd-user', env: 'MESHNET_ETCD_USER' },
  passwordFile: { flag: '--etcd-password-file', env: 'MESHNET_ETCD_PASSWORD_FILE' },
  insecure: { flag: '--insecure-store', env: 'MESHNET_INSECURE_STORE' },
} as const satisfies Record<string, SettingName>;

/** The environment variable that may carry the etcd password itself (never a flag: argv is world-readable). */
export const ETCD_PASSWORD_ENV = 'MESHNET_ETCD_PASSWORD';

/**
 * A non-loopback etcd without TLS client certificates: refused unless --insecure-store is given, because whoever can
 * write the store runs commands as root on every host.
 */
export class StoreInsecureError extends StoreError {
  constructor(
    readonly endpoints: readonly string[],
    /** The settings still to give, in order. */
    readonly missing: readonly SettingName[],
  ) {
    super(
      'STORE_INSECURE',
      `etcd at ${endpoints.join(',')} is not on loopback, so meshnet talks to it only over TLS with a client certificate; ` +
        `missing: ${missing.map((m) => `${m.flag} FILE (env ${m.env})`).join(', ')}. ` +
        'Put them in /etc/default/meshnet for the agent (deploy/etcd/make-certs.sh makes a CA, server and client certificates). ' +
        `Only for a lab without TLS: give ${ETCD_SETTINGS.insecure.flag} (env ${ETCD_SETTINGS.insecure.env}=1).`,
    );
  }
}

/** A TLS file given for etcd cannot be read. */
export class StoreTlsFileError extends StoreError {
  constructor(
    readonly setting: SettingName,
    readonly path: string,
    reason: string,
  ) {
    super('STORE_TLS_FILE', `cannot read ${path} given by ${setting.flag} (env ${setting.env}): ${reason}; check the path and that meshnet runs as root`);
  }
}

/** The TLS handshake with etcd failed: etcd rejected meshnet's client certificate, or meshnet rejected etcd's. */
export class StoreTlsError extends StoreError {
  constructor(
    readonly side: 'client-certificate' | 'server-certificate',
    readonly detail: string,
  ) {
    super(
      'STORE_TLS',
      side === 'client-certificate'
        ? `etcd refused meshnet's TLS connection (${detail}): it accepts only a client certificate signed by its CA; give ${ETCD_SETTINGS.cert.flag} and ${ETCD_SETTINGS.key.flag} (env ${ETCD_SETTINGS.cert.env}, ${ETCD_SETTINGS.key.env}) made by the same CA (deploy/etcd/make-certs.sh)`
        : `etcd's certificate does not verify (${detail}): ${ETCD_SETTINGS.ca.flag} (env ${ETCD_SETTINGS.ca.env}) must be the CA that signed it, and the certificate must name the address in the store address (a SAN)`,
    );
  }
}
