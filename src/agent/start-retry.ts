import type { Logger } from '../log/logger.js';
import { StoreBusyError, StoreTimeoutError, StoreUnavailableError } from '../store/store-errors.js';
import { isSqliteBusy } from '../store/sqlite-busy.js';

/** True for a store failure that a later try may not meet: a lock held, an etcd that did not answer. */
export function isTransientStoreError(err: unknown): boolean {
  return err instanceof StoreBusyError || err instanceof StoreTimeoutError || err instanceof StoreUnavailableError || isSqliteBusy(err);
}

/**
 * Runs `step` until it succeeds, retrying transient store failures with a doubling pause (0.25 s to 5 s)
 * for up to `maxMs`; anything else, or the last failure, is thrown. An agent started while the store is
 * briefly locked or away (three agents opening one SQLite file on a loaded host, an etcd election) waits
 * instead of exiting.
 */
export async function retryTransient<T>(what: string, step: () => Promise<T>, opts: { log: Logger; maxMs?: number; sleep?: (ms: number) => Promise<void> }): Promise<T> {
  const deadline = Date.now() + (opts.maxMs ?? 60_000);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let pause = 250; ; pause = Math.min(pause * 2, 5000)) {
    try {
      return await step();
    } catch (err) {
      if (!isTransientStoreError(err) || Date.now() + pause > deadline) throw err;
      opts.log.warn({ event: 'store.start_retry', step: what, error: (err as Error).message, retryInMs: pause });
      await sleep(pause);
    }
  }
}
