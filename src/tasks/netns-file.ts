import { closeSync, constants, fstatSync, openSync, statSync } from 'node:fs';
import { CLONE_NEWNET, ioctl } from '../sandbox/libc.js';
import { TaskError } from './errors.js';

/** ioctl that returns the CLONE_NEW* type of a namespace file (Linux 4.11). */
const NS_GET_NSTYPE = 0xb703;

/** What the kernel says about a file offered as a network namespace. */
export interface NetnsFileFacts {
  dev: number;
  ino: number;
  /** NS_GET_NSTYPE's answer; null where the kernel does not support the ioctl. */
  nsType: number | null;
}

/** A path given as a network namespace is not one meshnet may wire. */
export class NotANetworkNamespaceError extends TaskError {
  constructor(path: string, reason: string) {
    super('TASK_NOT_A_NETNS', `${path} ${reason}`);
  }
}

/**
 * Why the file is not a foreign network namespace, or undefined when it is one. Judged by device
 * and inode, never by name: `/run/meshnet/netns/../../../proc/1/ns/net` has the right basename.
 */
export function netnsFileProblem(facts: NetnsFileFacts, nsfsDev: number, forbidden: readonly string[]): string | undefined {
  if (facts.dev !== nsfsDev) return 'is not a namespace file (not on the nsfs filesystem): give /run/netns/NAME or /proc/PID/ns/net';
  if (facts.nsType !== null && facts.nsType !== CLONE_NEWNET) return 'is a namespace of another kind, not a network namespace: give the net entry, e.g. /proc/PID/ns/net';
  if (forbidden.includes(`${facts.dev}:${facts.ino}`)) return 'is the host\'s own network namespace: wiring it would rewrite the host\'s routes and firewall';
  return undefined;
}

function identity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    // init's namespace is hidden from a caller without ptrace rights over it; then its own is the host's
    return undefined;
  }
}

/**
 * Throws NotANetworkNamespaceError unless `path` is a network namespace other than this process's
 * and init's (the host's). The path is stat'ed before it is opened, so no device or FIFO is ever
 * opened, and the opened file is checked to be the one stat'ed.
 */
export function assertForeignNetns(path: string): void {
  if (!path.startsWith('/')) throw new NotANetworkNamespaceError(path, 'must be an absolute path to a network namespace file');
  const nsfsDev = statSync('/proc/self/ns/net').dev;
  const forbidden = [identity('/proc/self/ns/net'), identity('/proc/1/ns/net')].filter((id): id is string => id !== undefined);
  let before;
  try {
    before = statSync(path);
  } catch (err) {
    throw new NotANetworkNamespaceError(path, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run this on the node's host, where the namespace exists`);
  }
  const early = netnsFileProblem({ dev: before.dev, ino: before.ino, nsType: null }, nsfsDev, forbidden);
  if (early) throw new NotANetworkNamespaceError(path, early);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (st.dev !== before.dev || st.ino !== before.ino) throw new NotANetworkNamespaceError(path, 'changed while it was checked: try again');
    const type = ioctl(fd, NS_GET_NSTYPE);
    const problem = netnsFileProblem({ dev: st.dev, ino: st.ino, nsType: type >= 0 ? type : null }, nsfsDev, forbidden);
    if (problem) throw new NotANetworkNamespaceError(path, problem);
  } finally {
    closeSync(fd);
  }
}
