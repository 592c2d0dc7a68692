import { BlockList, isIP } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { KvStore } from './kv-store.js';
import type { EtcdStoreOptions, EtcdTlsOptions } from './etcd-store.js';
import type { SqliteStoreOptions } from './sqlite-store.js';
import { ETCD_SETTINGS, StoreAddressError, StoreInsecureError, type SettingName } from './store-errors.js';

/** Where the embedded store lives when neither an address nor MESHNET_STORE names one. */
export const DEFAULT_SQLITE_PATH = '/var/lib/meshnet/state.db';

/** etcd options accepted by openStore: the client's, plus the operator's consent to a weaker transport. */
export interface OpenEtcdOptions extends Omit<EtcdStoreOptions, 'endpoints'> {
  /** Allow a non-loopback etcd without TLS client certificates (--insecure-store); openStore then warns. */
  insecure?: boolean;
}

/** Backend-specific options accepted by openStore next to the address. */
export interface OpenStoreOptions {
  sqlite?: SqliteStoreOptions;
  etcd?: OpenEtcdOptions;
  /** Where openStore reports an insecure etcd transport it was told to accept (a warn line per open). */
  log?: Logger;
}

/** A parsed store address. */
export type StoreAddress = { kind: 'sqlite'; path: string } | { kind: 'etcd'; endpoints: string[] };

/** Parses `sqlite:/path/file.db` or `etcd://host:port[,host:port]`; throws StoreAddressError otherwise. */
export function parseStoreAddress(address: string): StoreAddress {
  if (address.startsWith('sqlite:')) {
    let path = address.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path.length === 0) path = DEFAULT_SQLITE_PATH;
    if (!path.startsWith('/')) throw new StoreAddressError(address, 'the sqlite path must be absolute');
    return { kind: 'sqlite', path };
  }
  if (address.startsWith('etcd://')) {
    const endpoints = address.slice('etcd://'.length).split(',').map((e) => e.trim());
    for (const endpoint of endpoints) {
      const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(endpoint);
      if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
        throw new StoreAddressError(address, `endpoint ${JSON.stringify(endpoint)} is not host:port`);
      }
    }
    return { kind: 'etcd', endpoints };
  }
  throw new StoreAddressError(address, 'unknown scheme');
}

// Loopback is the one place plaintext is safe enough by default: a single-host setup, reachable only from the host.
const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Whether an etcd endpoint (host:port, IPv6 in brackets) is on loopback: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackEndpoint(endpoint: string): boolean {
  const host = endpoint.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  // BlockList matches IPv4-mapped IPv6 (::ffff:127.0.0.1) and any spelling of ::1.
  return family !== 0 && loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** How openStore will talk to etcd, decided from the endpoints and the security options. */
export interface EtcdTransport {
  /** mtls: TLS with a client certificate; tls: server certificate only; plaintext: no TLS. */
  mode: 'mtls' | 'tls' | 'plaintext';
  /** Endpoints off loopback. */
  remote: string[];
  /** Set when `insecure` let a weaker transport reach a non-loopback etcd: what to tell the operator at start. */
  warning?: string;
}

/**
 * The transport policy: a non-loopback etcd needs TLS with a CA and a client certificate, unless `insecure`
 * is set (then the result carries a warning). Throws StoreInsecureError naming the missing settings.
 */
export function etcdTransport(endpoints: readonly string[], options: Pick<OpenEtcdOptions, 'tls' | 'insecure'> = {}): EtcdTransport {
  const tls: EtcdTlsOptions = options.tls ?? {};
  const has = { ca: tls.ca ?? tls.caFile, cert: tls.cert ?? tls.certFile, key: tls.key ?? tls.keyFile };
  const clientCert = has.ca !== undefined && has.cert !== undefined && has.key !== undefined;
  const mode = options.tls === undefined ? 'plaintext' : clientCert ? 'mtls' : 'tls';
  const remote = endpoints.filter((e) => !isLoopbackEndpoint(e));
  if (mode === 'mtls' || remote.length === 0) return { mode, remote };
  if (options.insecure !== true) {
    const missing: SettingName[] = (['ca', 'cert', 'key'] as const).filter((k) => has[k] === undefined).map((k) => ETCD_SETTINGS[k]);
    throw new StoreInsecureError(remote, missing);
  }
  const what = mode === 'plaintext' ? 'in plaintext' : 'over TLS without a client certificate';
  return {
    mode,
    remote,
    warning:
      `${ETCD_SETTINGS.insecure.flag}: talking to etcd at ${remote.join(',')} ${what}; whoever can reach etcd can rewrite the cluster ` +
      `and run commands as root on every host. Give ${ETCD_SETTINGS.ca.flag}, ${ETCD_SETTINGS.cert.flag} and ${ETCD_SETTINGS.key.flag} ` +
      `(env ${ETCD_SETTINGS.ca.env}, ${ETCD_SETTINGS.cert.env}, ${ETCD_SETTINGS.key.env}) instead.`,
  };
}

/** The address used when none is given: $MESHNET_STORE or the default sqlite file. */
export function defaultStoreAddress(): string {
  const fromEnv = process.env['MESHNET_STORE'];
  return fromEnv !== undefined && fromEnv.length > 0 ? fromEnv : `sqlite:${DEFAULT_SQLITE_PATH}`;
}

/**
 * Opens the store named by `address` (default: defaultStoreAddress()). Backends load lazily: the etcd client
 * (gRPC) costs most of a second of startup that agents on the embedded store should not pay.
 * A non-loopback etcd needs TLS client certificates (see etcdTransport); an accepted insecure one is logged at warn.
 */
export async function openStore(address: string = defaultStoreAddress(), options: OpenStoreOptions = {}): Promise<KvStore> {
  const parsed = parseStoreAddress(address);
  if (parsed.kind === 'sqlite') {
    const { SqliteKvStore } = await import('./sqlite-store.js');
    return new SqliteKvStore(parsed.path, options.sqlite);
  }
  const transport = etcdTransport(parsed.endpoints, options.etcd);
  if (transport.warning !== undefined) {
    options.log?.warn({ event: 'store.insecure', endpoints: transport.remote, transport: transport.mode, hint: transport.warning });
  }
  const { EtcdKvStore } = await import('./etcd-store.js');
  return new EtcdKvStore({ ...options.etcd, endpoints: parsed.endpoints });
}
