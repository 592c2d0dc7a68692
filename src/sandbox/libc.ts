import koffi from 'koffi';

/** The few libc calls that Node does not expose: entering, creating and mounting namespaces, closing and polling raw fds, pidfds. */
const libc = koffi.load('libc.so.6');

export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;

export const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
export const unshare = libc.func('int unshare(int flags)') as (flags: number) => number;
export const mount = libc.func(
  'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)',
) as (source: string | null, target: string, fstype: string | null, flags: number, data: null) => number;
export const umount2 = libc.func('int umount2(const char *target, int flags)') as (target: string, flags: number) => number;

/** errno of the last failed call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

export const close = libc.func('int close(int fd)') as (fd: number) => number;
/** fcntl(2) with an int argument (F_GETFD, F_SETFD, F_DUPFD_CLOEXEC). */
export const fcntl = libc.func('int fcntl(int fd, int cmd, int arg)') as (fd: number, cmd: number, arg: number) => number;
/** syscall(2), for calls glibc has no wrapper for in every version (pidfd_getfd before 2.36). */
export const syscall3 = libc.func('long syscall(long nr, long a, long b, long c)') as (nr: number, a: number, b: number, c: number) => number;
/** poll(2) over a struct pollfd array (8 bytes each: int fd, short events, short revents). */
export const poll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)') as (fds: Buffer, nfds: number, timeoutMs: number) => number;
/** pidfd_open(2); null on a libc older than glibc 2.36, which lacks it. */
export const pidfdOpen = ((): ((pid: number, flags: number) => number) | null => {
  try {
    return libc.func('int pidfd_open(int pid, unsigned int flags)') as (pid: number, flags: number) => number;
  } catch {
    return null;
  }
})();

/** ioctl(2) without an argument (NS_GET_NSTYPE and the like); -1 with errno on failure. */
export const ioctl = libc.func('int ioctl(int fd, unsigned long request)') as (fd: number, request: number) => number;
