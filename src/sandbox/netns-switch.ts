import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { CLONE_NEWNET, lastErrno, setns, unshare } from './libc.js';
import { NamespaceNotFoundError, SyscallError } from './errors.js';

/**
 * setns(2) for network namespaces is per thread. The main thread may step into another
 * namespace for a synchronous call (creating a socket, writing a /proc/sys file) and step
 * back before the event loop runs again; everything created meanwhile stays in the namespace
 * it was created in. Async work must never run while switched on the main thread, so
 * `withNetns` refuses functions that return promises; a worker thread that owns its sockets
 * may stay inside across awaits with `inNetnsAsync`. Every setns in meshnet is in this file.
 */

// The namespace this thread started in, captured before any switch (each worker loads its own copy).
const homeFd = openSync('/proc/thread-self/ns/net', 'r');
const homeStat = fstatSync(homeFd);
let depth = 0;
let asyncQueue: Promise<unknown> = Promise.resolve();

function enter(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new NamespaceNotFoundError(path);
  }
  try {
    if (setns(fd, CLONE_NEWNET) !== 0) throw new SyscallError('setns', lastErrno(), path);
  } finally {
    closeSync(fd);
  }
}

function returnHome(): void {
  // Failing to return home would leave every later socket of this thread in the wrong namespace:
  // fatal, before anything else runs. No logger can be reached from here, hence the plain line.
  if (setns(homeFd, CLONE_NEWNET) !== 0) {
    process.stderr.write(`meshnet: fatal: cannot return this thread to its home network namespace (errno ${lastErrno()}); aborting\n`);
    process.abort();
  }
}

/** Identity (device:inode) of the namespace at `path`. */
export function netnsIdentity(path: string): string {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    throw new NamespaceNotFoundError(path);
  }
}

/** Identity of the namespace this process runs in. */
export function homeNetnsIdentity(): string {
  return `${homeStat.dev}:${homeStat.ino}`;
}

/** Runs `fn` synchronously with this thread inside the namespace at `path` (null: the home namespace). */
export function withNetns<T>(path: string | null, fn: () => T): T {
  if (path === null) return fn();
  if (depth > 0) throw new Error('withNetns cannot nest: step out of the current namespace first');
  enter(path);
  depth++;
  try {
    const result = fn();
    if (result instanceof Promise) {
      throw new Error('withNetns runs synchronous code only: the event loop must not run inside another namespace');
    }
    return result;
  } finally {
    depth--;
    returnHome();
  }
}

/**
 * For a worker thread that serves sockets in many namespaces (the DNS workers): runs async `fn`
 * with this thread inside `path`, one call at a time per thread, and returns home when it
 * settles, also on failure. The thread's event loop runs inside the namespace meanwhile, so
 * `fn` must only create what belongs there; the main thread may never do this.
 */
export function inNetnsAsync<T>(path: string, fn: () => Promise<T>): Promise<T> {
  if (isMainThread) {
    return Promise.reject(new Error('inNetnsAsync is for worker threads: the main thread uses withNetns with synchronous code'));
  }
  const run = asyncQueue.then(async () => {
    if (depth > 0) throw new Error('inNetnsAsync cannot nest: step out of the current namespace first');
    enter(path);
    depth++;
    try {
      return await fn();
    } finally {
      depth--;
      returnHome();
    }
  });
  asyncQueue = run.catch(() => undefined);
  return run;
}

/** Runs `fn` with this thread in a fresh, unnamed namespace (used to create one before it is bind-mounted). */
export function inFreshNetns<T>(fn: () => T): T {
  if (depth > 0) throw new Error('inFreshNetns cannot nest');
  // unshare() only switches the calling thread; setns(home) below brings it back.
  if (unshare(CLONE_NEWNET) !== 0) throw new SyscallError('unshare', lastErrno(), 'CLONE_NEWNET');
  depth++;
  try {
    return fn();
  } finally {
    depth--;
    returnHome();
  }
}
