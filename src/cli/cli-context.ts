import { openStore, defaultStoreAddress, type OpenStoreOptions } from '../store/open-store.js';
import type { KvStore } from '../store/kv-store.js';
import { Cluster } from '../model/cluster.js';

/** Exit codes: 0 done, 1 failed at run time, 2 bad usage or input, 3 did not converge in time. */
export const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 3 } as const;

/** An error the CLI reports as-is with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Which store to open: --store (or MESHNET_STORE) and its etcd security options. */
export interface StoreChoice {
  address: string | undefined;
  options: OpenStoreOptions;
}

/** Opens the store named by --store (or MESHNET_STORE, or the embedded default) and runs `fn` on it. */
export async function withCluster<T>(store: StoreChoice, fn: (cluster: Cluster, store: KvStore) => Promise<T>): Promise<T> {
  const s = await openStore(store.address ?? defaultStoreAddress(), store.options);
  try {
    return await fn(new Cluster(s), s);
  } finally {
    await s.close();
  }
}

/** Prints JSON for scripts. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
