import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log/logger.js';
import { StoreBusyError, StoreRequestError } from '../store/store-errors.js';
import { isTransientStoreError, retryTransient } from './start-retry.js';

const noSleep = async () => undefined;

describe('retryTransient', () => {
  it('retries a locked store until it answers', async () => {
    let calls = 0;
    const locked = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY_RECOVERY' });
    const out = await retryTransient('register', async () => {
      calls++;
      if (calls === 1) throw new StoreBusyError('/x.db', 5000);
      if (calls === 2) throw locked;
      return 'ok';
    }, { log: silentLogger(), sleep: noSleep });
    expect([out, calls]).toEqual(['ok', 3]);
  });

  it('throws what a retry cannot fix at once', async () => {
    let calls = 0;
    await expect(retryTransient('register', async () => {
      calls++;
      throw new StoreRequestError('bad key');
    }, { log: silentLogger(), sleep: noSleep })).rejects.toThrow('bad key');
    expect(calls).toBe(1);
  });

  it('gives up after maxMs with the last failure', async () => {
    await expect(retryTransient('open', async () => {
      throw new StoreBusyError('/x.db', 5000);
    }, { log: silentLogger(), maxMs: 0, sleep: noSleep })).rejects.toBeInstanceOf(StoreBusyError);
  });

  it('knows the SQLite busy and locked families, and nothing else', () => {
    for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED_SHAREDCACHE']) expect(isTransientStoreError({ code })).toBe(true);
    for (const code of ['SQLITE_CORRUPT', 'SQLITE_READONLY', undefined]) expect(isTransientStoreError({ code })).toBe(false);
  });
});
