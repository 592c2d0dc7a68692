/**
 * File descriptors beyond what node's API reaches: duplicating one, closing one, and taking copies of
 * another process's (pidfd_getfd, Linux 5.6). The resolver's sockets outlive an agent restart this way.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { close, fcntl, syscall3 } from '../sandbox/libc.js';

/** x86_64 and aarch64 share these numbers (the generic syscall table numbers them alike since 5.1). */
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
/** fcntl's dup that sets close-on-exec on the copy, and its descriptor-flag commands (fcntl.h). */
const F_DUPFD_CLOEXEC = 1030;
const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/**
 * A new descriptor for the open file `fd` refers to; it stays open until closeFd, whatever happens to `fd`.
 * Close-on-exec, as node's own are: every process the agent starts (tasks, nft, iptables) would otherwise
 * inherit it, and a task would hold other tasks' resolver sockets.
 */
export function dupFd(fd: number): number {
  const out = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (out < 0) throw new Error(`dup(${fd}) failed`);
  return out;
}

/** Closes a descriptor made by dupFd or takeFds (one node does not own). */
export function closeFd(fd: number): void {
  close(fd);
}

/**
 * Copies of descriptors `fds` of process `pid`, in this process, in the same order (close-on-exec, as
 * pidfd_getfd makes them). Needs ptrace rights over
 * `pid` (root with CAP_SYS_PTRACE). A descriptor that cannot be taken is null; a process that is gone throws.
 */
export function takeFds(pid: number, fds: readonly number[]): (number | null)[] {
  const pidfd = Number(syscall3(SYS_PIDFD_OPEN, pid, 0, 0));
  if (pidfd < 0) throw new Error(`pidfd_open(${pid}) failed: the process is gone, or the kernel is older than 5.3`);
  try {
    return fds.map((fd) => {
      const got = Number(syscall3(SYS_PIDFD_GETFD, pidfd, fd, 0));
      return got < 0 ? null : got;
    });
  } finally {
    close(pidfd);
  }
}

/**
 * Sets close-on-exec on every descriptor of this process above stderr that lacks it, and returns how many
 * it changed. Node opens its own descriptors close-on-exec, but C libraries do not always (libnftables'
 * netlink socket, one per namespace it serves): a task started without this inherited them, and a task
 * running as root could have rewritten the nftables of other tasks' namespaces through them.
 */
export function closeOnExecAll(): number {
  let changed = 0;
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    const flags = fcntl(fd, F_GETFD, 0);
    // Closed meanwhile (the listing's own descriptor, or another thread's): nothing to mark.
    if (flags < 0 || (flags & FD_CLOEXEC) !== 0) continue;
    if (fcntl(fd, F_SETFD, flags | FD_CLOEXEC) === 0) changed++;
  }
  return changed;
}

/** Sets close-on-exec on `fd` when it is a socket without it; false when it is not (closed, no socket, or marked already). */
export function markSocketCloseOnExec(fd: number): boolean {
  const flags = fcntl(fd, F_GETFD, 0);
  if (flags < 0 || (flags & FD_CLOEXEC) !== 0) return false;
  try {
    if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) return false;
  } catch {
    return false;
  }
  return fcntl(fd, F_SETFD, flags | FD_CLOEXEC) === 0;
}
