import { close, pidfdOpen, poll } from '../sandbox/libc.js';

/**
 * Notices the end of processes this agent did not start. A task adopted after an agent restart was
 * the old agent's child, so no exit event reaches the new one; its end must be looked for. Reading
 * /proc/PID/stat of every adopted task four times a second cost ~90 us a read: 100 tasks kept an idle
 * node at several percent of a core. A pidfd (Linux 5.3) becomes readable when its process ends, and
 * one poll(2) over all of them that never waits says which ended: one syscall a tick, whatever the count.
 * Node has no pidfd API, so the calls come from sandbox/libc.ts (koffi), as the other raw syscalls do.
 * A libc without pidfd_open (before glibc 2.36) makes add() refuse, and callers read /proc instead.
 */

/** poll(2)'s "readable"; a pidfd reports it once its process has ended. */
const POLLIN = 0x1;
/** struct pollfd: int fd; short events; short revents. */
const POLLFD_SIZE = 8;
/** What ended() says on almost every tick: one shared empty list, no allocation. */
const NONE: readonly number[] = Object.freeze([]);

/** A set of processes watched for their end through pidfds. */
export class ExitWatch {
  private readonly fds = new Map<number, number>();
  /** The pollfd array and the pids in its order, rebuilt only when the set changes (revents is the kernel's to write). */
  private buf = Buffer.alloc(0);
  private order: number[] | null = null;

  /**
   * Watches `pid`; false when this system has no pidfds or the process is already gone. The caller
   * checks afterwards that `pid` still is the process it means (its start time): the pidfd then
   * follows that process for good, even if the number is reused later.
   */
  add(pid: number): boolean {
    if (this.fds.has(pid)) return true;
    if (!pidfdOpen) return false;
    const fd = pidfdOpen(pid, 0);
    if (fd < 0) return false;
    this.fds.set(pid, fd);
    this.order = null;
    return true;
  }

  /** Whether `pid` is watched. */
  has(pid: number): boolean {
    return this.fds.has(pid);
  }

  /** Stops watching `pid`. */
  remove(pid: number): void {
    const fd = this.fds.get(pid);
    if (fd === undefined) return;
    this.fds.delete(pid);
    this.order = null;
    close(fd);
  }

  /** Stops watching every pid not in `keep`. */
  retain(keep: ReadonlySet<number>): void {
    for (const pid of [...this.fds.keys()]) if (!keep.has(pid)) this.remove(pid);
  }

  /** The watched processes that have ended (they stay watched until removed): one poll(2) that never waits. */
  ended(): readonly number[] {
    if (this.fds.size === 0) return NONE;
    if (this.order === null) {
      this.order = [...this.fds.keys()];
      this.buf = Buffer.alloc(this.order.length * POLLFD_SIZE);
      this.order.forEach((pid, i) => {
        this.buf.writeInt32LE(this.fds.get(pid)!, i * POLLFD_SIZE);
        this.buf.writeInt16LE(POLLIN, i * POLLFD_SIZE + 4);
      });
    }
    const pids = this.order;
    if (poll(this.buf, pids.length, 0) <= 0) return NONE;
    // Any event counts: POLLIN is the end; POLLHUP/POLLERR/POLLNVAL would mean the fd no longer watches anything.
    return pids.filter((_, i) => this.buf.readInt16LE(i * POLLFD_SIZE + 6) !== 0);
  }

  /** Closes every pidfd. */
  close(): void {
    this.retain(new Set());
  }
}
