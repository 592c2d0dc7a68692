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

/** Reads a net.* sysctl inside a namespace. */
export function getSysctl(netns: string | null, key: string): string {
  const path = procPath(key);
  return withNetns(netns, () => readFileSync(path, 'utf8').trim());
}
