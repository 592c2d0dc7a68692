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

/** Writes `key` inside `netns` (/proc/sys/net follows the calling thread's namespace), unless `unless(current)` holds. */
function writeSysctl(netns: string | null, key: string, value: string | number, unless?: (current: string) => boolean): boolean {
  const path = procPath(key);
  return withNetns(netns, () => {
    try {
      if (unless?.(readFileSync(path, 'utf8'))) return false;
      writeFileSync(path, String(value));
      return true;
    } catch (err) {
      throw new SandboxError('SYSCTL_FAILED', `cannot set ${key}=${value}${netns ? ` in ${netns}` : ''}: ${(err as Error).message}`);
    }
  });
}

/** Sets a net.* sysctl inside a namespace. */
export function setSysctl(netns: string | null, key: string, value: string | number): void {
  writeSysctl(netns, key, value);
}

/**
 * Sets a net.* sysctl inside a namespace unless it already holds `value` (whitespace aside: the kernel prints
 * ranges with a tab); returns whether it wrote. A reconciler checks its sysctls on every resync, and a check
 * that finds the value is not a change.
 */
export function ensureSysctl(netns: string | null, key: string, value: string | number): boolean {
  const words = (s: string) => s.trim().split(/\s+/).join(' ');
  const wanted = words(String(value));
  return writeSysctl(netns, key, value, (current) => words(current) === wanted);
}

/** Reads a net.* sysctl inside a namespace. */
export function getSysctl(netns: string | null, key: string): string {
  const path = procPath(key);
  return withNetns(netns, () => readFileSync(path, 'utf8').trim());
}
