import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { CLONE_NEWNET, lastErrno, setns, unshare } from './libc.js';
import { NamespaceNotFoundError, SyscallError } from './errors.js';

/**
 * setns(2) for network namespaces is per thread. The main thread may step into another
 * namespace for a synchronous call (creating a socket, writing a /proc/sys file) and step
 * back before the event loop runs again; everything created meanwhile stays in the namespace
 * it was created in. Async work must never run while switched, so `withNetns` refuses
 * functions that return promises.
 */

// The namespace this process started in, captured before any switch.
const homeFd = openSync('/proc/thread-self/ns/net', 'r');
const homeStat = fstatSync(homeFd);
let depth = 0;

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
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new NamespaceNotFoundError(path);
  }
  try {
    if (setns(fd, CLONE_NEWNET) !== 0) throw new SyscallError('setns', lastErrno(), path);
    depth++;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new Error('withNetns runs synchronous code only: the event loop must not run inside another namespace');
      }
      return result;
    } finally {
      depth--;
      // Failing to return home would leave every later socket in the wrong namespace: fatal.
      if (setns(homeFd, CLONE_NEWNET) !== 0) {
        process.stderr.write(`${JSON.stringify({ event: 'fatal', msg: 'cannot return to home netns', errno: lastErrno() })}\n`);
        process.abort();
      }
    }
  } finally {
    closeSync(fd);
  }
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
    if (setns(homeFd, CLONE_NEWNET) !== 0) {
      process.stderr.write(`${JSON.stringify({ event: 'fatal', msg: 'cannot return to home netns', errno: lastErrno() })}\n`);
      process.abort();
    }
  }
}
