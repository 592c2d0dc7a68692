import type { KvStore } from './kv-store.js';
import type { EtcdStoreOptions } from './etcd-store.js';
import type { SqliteStoreOptions } from './sqlite-store.js';
import { StoreAddressError } from './store-errors.js';

/** Where the embedded store lives when neither an address nor MESHNET_STORE names one. */
export const DEFAULT_SQLITE_PATH = '/var/lib/meshnet/state.db';

/** Backend-specific options accepted by openStore next to the address. */
export interface OpenStoreOptions {
  sqlite?: SqliteStoreOptions;
  etcd?: Omit<EtcdStoreOptions, 'endpoints'>;
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

/** The address used when none is given: $MESHNET_STORE or the default sqlite file. */
export function defaultStoreAddress(): string {
  const fromEnv = process.env['MESHNET_STORE'];
  return fromEnv !== undefined && fromEnv.length > 0 ? fromEnv : `sqlite:${DEFAULT_SQLITE_PATH}`;
}

/**
 * Opens the store named by `address` (default: defaultStoreAddress()). Backends load lazily: the etcd client
 * (gRPC) costs most of a second of startup that agents on the embedded store should not pay.
 */
export async function openStore(address: string = defaultStoreAddress(), options: OpenStoreOptions = {}): Promise<KvStore> {
  const parsed = parseStoreAddress(address);
  if (parsed.kind === 'sqlite') {
    const { SqliteKvStore } = await import('./sqlite-store.js');
    return new SqliteKvStore(parsed.path, options.sqlite);
  }
  const { EtcdKvStore } = await import('./etcd-store.js');
  return new EtcdKvStore({ ...options.etcd, endpoints: parsed.endpoints });
}
