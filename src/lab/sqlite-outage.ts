import { join } from 'node:path';
import type { Lab } from './lab.js';
import { compiledRoot } from './cluster-lab.js';

/** The compiled lock holder program. */
export const SQLITE_LOCK_HOLDER_PATH = join(compiledRoot, 'src/lab/sqlite-lock-holder.js');

/** A store outage in progress: every call on the SQLite store fails until it ends. */
export interface StoreOutage {
  /** When the lock was taken (ms since the epoch). */
  heldAt: number;
  /** Resolves with the time the lock was let go (the holder ends by itself after `holdMs`). */
  released: Promise<number>;
  /** Ends the outage early. */
  release(): void;
}

/**
 * Makes the SQLite store at `dbFile` unusable for `holdMs` by holding its WAL locks from another
 * process (see sqlite-lock-holder.ts). The holder runs in lab namespace `netns` only so that lab
 * teardown kills it with everything else; a file lock does not care about namespaces.
 */
export async function startSqliteOutage(lab: Lab, netns: string, dbFile: string, holdMs: number): Promise<StoreOutage> {
  const child = lab.spawn(netns, [process.execPath, SQLITE_LOCK_HOLDER_PATH, '--db', dbFile, '--hold-ms', String(holdMs)]);
  let stdout = '';
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const marks = new Map<string, number>();
  const waiters: (() => void)[] = [];
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    for (const m of stdout.matchAll(/\{"event":"store_lock\.(held|released)","at":(\d+)/g)) marks.set(m[1]!, Number(m[2]));
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const mark = async (name: string): Promise<number> => {
    for (;;) {
      const at = marks.get(name);
      if (at !== undefined) return at;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the store lock holder ended without "${name}": ${stderr.trim().slice(-400)}`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), exited]);
    }
  };
  const heldAt = await mark('held');
  const released = mark('released').catch(async () => {
    // Killed (teardown): the kernel dropped the lock when it exited.
    await exited;
    return Date.now();
  });
  return { heldAt, released, release: () => child.kill('SIGTERM') };
}
