import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AF_INET, socket } from '../sandbox/libc-sockets.js';
import { close, fcntl } from '../sandbox/libc.js';
import { closeFd, closeOnExecAll, dupFd, markSocketCloseOnExec, takeFds } from './process-fds.js';

const SOCK_DGRAM = 2;

/** The descriptors a child started now would hold (it lists its own, from a shell). */
function childFds(): number[] {
  const r = spawnSync('sh', ['-c', 'ls /proc/$$/fd'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

describe('process descriptors', () => {
  it('closeOnExecAll keeps a descriptor a C library opened without close-on-exec from every child', () => {
    const fd = socket(AF_INET, SOCK_DGRAM, 0);
    expect(fd).toBeGreaterThan(2);
    try {
      // As libnftables' socket was: a child inherits it.
      expect(childFds()).toContain(fd);
      expect(closeOnExecAll()).toBeGreaterThanOrEqual(1);
      expect(childFds()).not.toContain(fd);
      expect(closeOnExecAll()).toBe(0);
    } finally {
      close(fd);
    }
  });

  it('markSocketCloseOnExec marks one socket that lacks it, and nothing else', () => {
    const fd = socket(AF_INET, SOCK_DGRAM, 0);
    const opened = openSync('/dev/null', 'r');
    // F_DUPFD (0): a copy without close-on-exec, as a C library's open file would be.
    const file = fcntl(opened, 0, 0);
    closeSync(opened);
    try {
      expect(childFds()).toContain(fd);
      expect(markSocketCloseOnExec(fd)).toBe(true);
      expect(childFds()).not.toContain(fd);
      // Marked already, not a socket, or no descriptor at all: the caller falls back to closeOnExecAll.
      expect(markSocketCloseOnExec(fd)).toBe(false);
      expect(childFds()).toContain(file);
      expect(markSocketCloseOnExec(file)).toBe(false);
      expect(markSocketCloseOnExec(1 << 20)).toBe(false);
    } finally {
      close(fd);
      close(file);
    }
  });

  it('dupFd makes a close-on-exec copy that outlives the original', () => {
    const fd = socket(AF_INET, SOCK_DGRAM | 0o2000000, 0);
    const copy = dupFd(fd);
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    close(fd);
    expect(readlinkSync(`/proc/self/fd/${copy}`)).toBe(target);
    expect(childFds()).not.toContain(copy);
    closeFd(copy);
    expect(readdirSync('/proc/self/fd').map(Number)).not.toContain(copy);
  });

  it('takeFds copies the descriptors another process holds', async () => {
    const fd = socket(AF_INET, SOCK_DGRAM | 0o2000000, 0);
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    const holder = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
    try {
      await new Promise((r) => holder.once('spawn', r));
      const [taken, missing] = takeFds(holder.pid!, [3, 99]);
      expect(missing).toBeNull();
      expect(readlinkSync(`/proc/self/fd/${taken!}`)).toBe(target);
      closeFd(taken!);
    } finally {
      holder.kill('SIGKILL');
      close(fd);
    }
    expect(() => takeFds(2 ** 22 + 1, [3])).toThrow(/pidfd_open/);
  });
});
