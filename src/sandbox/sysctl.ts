import { readFileSync, writeFileSync } from 'node:fs';
import { InvalidSandboxInputError, SandboxError } from './errors.js';
import { withNetns } from './netns-switch.js';

const KEY = /^net\.[a-z0-9_.\-]+$/i;

function procPath(key: string): string {
  if (!KEY.test(key) || key.includes('..')) {
    throw new InvalidSandboxInputError(`invalid sysctl ${JSON.stringify(key)}: only per-namespace net.* keys are set by meshnet`);
  }
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/** Sets a net.* sysctl inside a namespace (/proc/sys/net follows the calling thread's namespace). */
export function setSysctl(netns: string | null, key: string, value: string | number): void {
  const path = procPath(key);
  withNetns(netns, () => {
    try {
      writeFileSync(path, String(value));
    } catch (err) {
      throw new SandboxError('SYSCTL_FAILED', `cannot set ${key}=${value}${netns ? ` in ${netns}` : ''}: ${(err as Error).message}`);
    }
  });
}

/**
 * Sets a net.* sysctl inside a namespace unless it already holds `value`; returns whether it wrote.
 * A reconciler checks its sysctls on every resync: most are set, and some writes are not free
 * (ip_forward's resets every interface's forwarding).
 */
export function ensureSysctl(netns: string | null, key: string, value: string | number): boolean {
  const path = procPath(key);
  const wanted = String(value).trim().split(/\s+/).join(' ');
  return withNetns(netns, () => {
    try {
      if (readFileSync(path, 'utf8').trim().split(/\s+/).join(' ') === wanted) return false;
      writeFileSync(path, String(value));
      return true;
    } catch (err) {
      throw new SandboxError('SYSCTL_FAILED', `cannot set ${key}=${value}${netns ? ` in ${netns}` : ''}: ${(err as Error).message}`);
    }
  });
}

/** Reads a net.* sysctl inside a namespace. */
export function getSysctl(netns: string | null, key: string): string {
  const path = procPath(key);
  return withNetns(netns, () => readFileSync(path, 'utf8').trim());
}
