import { closeSync, ftruncateSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';

/** How a task's stdout.log is bounded: at most `maxFiles` files (the live one included) of about `maxBytes` each. */
export interface LogLimits {
  maxBytes: number;
  maxFiles: number;
}

/** Defaults: 16 MiB x 3, so a chatty task holds at most about 48 MiB of /run. */
export const DEFAULT_LOG_LIMITS: LogLimits = { maxBytes: 16 * 1024 * 1024, maxFiles: 3 };

const CHUNK = 1024 * 1024;

/** The rotated copies of `path`, newest first: path.1 .. path.(maxFiles-1). */
export function rotatedNames(path: string, maxFiles: number): string[] {
  return Array.from({ length: Math.max(0, maxFiles - 1) }, (_, i) => `${path}.${i + 1}`);
}

function shift(path: string, maxFiles: number): void {
  const names = rotatedNames(path, maxFiles);
  // The oldest kept copy goes, with a few beyond it that a larger limit may have left; then each moves one up.
  for (let i = Math.max(1, maxFiles - 1); i < maxFiles + 8; i++) rmSync(`${path}.${i}`, { force: true });
  for (let i = names.length - 1; i > 0; i--) {
    try {
      renameSync(names[i - 1]!, names[i]!);
    } catch {
      // that generation does not exist yet
    }
  }
}

/** The size of `path`, 0 when it does not exist. */
export function logSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Before a (re)start, when no process writes the log: moves it to path.1 once over the limit. True when rotated. */
export function rotateIdleLog(path: string, limits: LogLimits): boolean {
  if (logSize(path) <= limits.maxBytes) return false;
  shift(path, limits.maxFiles);
  if (limits.maxFiles > 1) renameSync(path, `${path}.1`);
  else rmSync(path, { force: true });
  return true;
}

/**
 * While the task runs: its stdout and stderr are an O_APPEND descriptor the supervisor cannot swap
 * (the process outlives the supervisor), so the log is copied to path.1 and truncated in place, as
 * logrotate's copytruncate does; the next write lands at offset 0. Output written between the last
 * read and the truncate (microseconds) is lost; a task that writes faster than the copy loses what
 * comes past twice the limit. True when rotated.
 */
export function rotateLiveLog(path: string, limits: LogLimits): boolean {
  if (logSize(path) <= limits.maxBytes) return false;
  shift(path, limits.maxFiles);
  const src = openSync(path, 'r+');
  try {
    if (limits.maxFiles > 1) {
      const dst = openSync(`${path}.1`, 'w', 0o600);
      try {
        const buf = Buffer.allocUnsafe(CHUNK);
        for (let pos = 0; pos < 2 * limits.maxBytes; ) {
          const n = readSync(src, buf, 0, CHUNK, pos);
          if (n === 0) break;
          writeSync(dst, buf, 0, n);
          pos += n;
        }
      } finally {
        closeSync(dst);
      }
    }
    ftruncateSync(src, 0);
  } finally {
    closeSync(src);
  }
  return true;
}
