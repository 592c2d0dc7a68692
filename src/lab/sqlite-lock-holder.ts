import koffi, { type TypeObject } from 'koffi';
import { openSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../log/logger.js';

// A store outage for the embedded SQLite store, from another process: it takes every WAL lock slot of
// the store's -shm file (bytes 120-127: WRITE, CKPT, RECOVER, READ0-4) as one exclusive byte-range lock,
// holds it for --hold-ms and exits, which releases it. While it is held no connection can start a read or
// a write transaction: writers get SQLITE_BUSY, readers spin in SQLite's WAL retry loop and then fail.
// An exclusive lock on the database file itself cannot be had in WAL mode, because every open connection
// keeps a shared lock on it. SQLite locks with fcntl byte ranges, which flock(1) does not touch and Node
// does not expose, hence the direct fcntl call (an open-file-description lock, so it conflicts with
// SQLite's POSIX locks whatever process holds them).

const log = createLogger({ component: 'sqlite-lock-holder' });

const F_OFD_SETLK = 37;
const F_WRLCK = 1;
const WAL_LOCK_OFFSET = 120;
const WAL_LOCK_SLOTS = 8;

const libc = koffi.load('libc.so.6');
const Flock = koffi.struct('flock', { l_type: 'int16', l_whence: 'int16', l_start: 'int64', l_len: 'int64', l_pid: 'int32' });
const fcntl = libc.func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, type: TypeObject, arg: unknown) => number;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { db: { type: 'string' }, 'hold-ms': { type: 'string' } } });
  const holdMs = Number(values['hold-ms']);
  if (!values.db || !Number.isInteger(holdMs) || holdMs <= 0 || holdMs > 600_000) {
    log.error({ event: 'store_lock.bad_arguments', error: 'usage: sqlite-lock-holder --db <state.db> --hold-ms <1-600000>' });
    process.exit(2);
  }
  // The -shm file exists while any agent has the store open in WAL mode; without it there is nothing to lock.
  const fd = openSync(`${values.db}-shm`, 'r+');
  const lock = { l_type: F_WRLCK, l_whence: 0, l_start: WAL_LOCK_OFFSET, l_len: WAL_LOCK_SLOTS, l_pid: 0 };
  const giveUp = Date.now() + 10_000;
  // Agents take these locks for a few ms at a time, so a free moment comes quickly.
  while (fcntl(fd, F_OFD_SETLK, koffi.pointer(Flock), lock) !== 0) {
    if (Date.now() > giveUp) {
      log.error({ event: 'store_lock.not_acquired', error: `could not lock ${values.db}-shm within 10 s (errno ${koffi.errno()}): the store stayed busy` });
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  process.stdout.write(`${JSON.stringify({ event: 'store_lock.held', at: Date.now(), holdMs })}\n`);
  const release = (): void => {
    process.stdout.write(`${JSON.stringify({ event: 'store_lock.released', at: Date.now() })}\n`, () => process.exit(0));
  };
  setTimeout(release, holdMs);
  process.once('SIGTERM', release);
}

main().catch((err: unknown) => {
  log.error({ event: 'store_lock.failed', error: err });
  process.exit(1);
});
