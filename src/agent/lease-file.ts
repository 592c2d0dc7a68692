import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The node lease a previous agent held, so a restart takes it over instead of re-creating every key under it. */
export function readLeaseFile(path: string): string | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Records the node lease atomically (write, then rename), readable only by root. */
export function writeLeaseFile(path: string, lease: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${lease}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
