import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A task's log as files: the rotated copies oldest first, then the live stdout.log. */
export interface TaskLogFiles {
  rotated: string[];
  live: string;
}

/** How a follow of a task's log is bounded. */
export interface FollowOptions {
  /** Ends the follow (the client went away, the agent stops). */
  signal?: AbortSignal;
  /** True once no process will write the log again (the task failed or was stopped): the follow then ends. */
  ended: () => boolean;
  /** How often the live file is looked at (default 200 ms). */
  pollMs?: number;
}

/** What to read of a task's log. */
export interface ReadLogOptions {
  /** Only the last `tail` lines (a final line without its newline counts); all lines when undefined. */
  tail?: number;
  /** Keep streaming what the task writes after what is there now. */
  follow?: FollowOptions;
}

const CHUNK = 64 * 1024;
const NL = 0x0a;

/** The files of the log whose live file is `live`, rotated copies (live.1, live.2, ...) oldest first. */
export function taskLogFiles(live: string): TaskLogFiles {
  const prefix = `${basename(live)}.`;
  let names: string[] = [];
  try {
    names = readdirSync(dirname(live));
  } catch {
    // No directory: no log.
  }
  const generations = names
    .filter((n) => n.startsWith(prefix) && /^[1-9][0-9]*$/.test(n.slice(prefix.length)))
    .map((n) => Number(n.slice(prefix.length)))
    .sort((a, b) => b - a);
  return { rotated: generations.map((g) => join(dirname(live), `${prefix}${g}`)), live };
}

/**
 * Where the last `n` lines of `buf` start, counting a final line without its newline; -1 when `buf`
 * holds fewer than `n` complete line starts (the caller then needs what comes before it). Pure.
 */
export function tailOffset(buf: Buffer, n: number, endsWithNewline: boolean): number {
  if (n <= 0) return buf.length;
  // The newline that ends the last line does not start another one.
  let i = endsWithNewline ? buf.length - 2 : buf.length - 1;
  let found = 0;
  for (; i >= 0; i--) {
    if (buf[i] === NL && ++found === n) return i + 1;
  }
  return -1;
}

/** One span of a file: [start, end). */
interface Span {
  path: string;
  start: number;
  end: number;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Reads [start, end) of an open file in order, as chunks. */
function* readSpan(fd: number, start: number, end: number): Generator<Buffer> {
  for (let pos = start; pos < end; ) {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, end - pos));
    // A short read is the file's end, wherever `end` was thought to be.
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) return;
    pos += n;
    yield buf.subarray(0, n);
  }
}

function* readFileSpan(span: Span): Generator<Buffer> {
  let fd: number;
  try {
    fd = openSync(span.path, 'r');
  } catch {
    return; // rotated away meanwhile
  }
  try {
    yield* readSpan(fd, span.start, span.end);
  } finally {
    closeSync(fd);
  }
}

function lastByte(path: string, size: number): number | undefined {
  if (size === 0) return undefined;
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    return readSync(fd, b, 0, 1, size - 1) === 1 ? b[0] : undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The spans holding the last `n` lines of the files (oldest first, each read up to its size in
 * `sizes`), reading backwards in chunks so a tail of a 48 MiB log reads kilobytes.
 */
function tailSpans(paths: string[], sizes: number[], n: number): Span[] {
  const spans: Span[] = [];
  let wanted = n;
  let newestEnd = true;
  for (let f = paths.length - 1; f >= 0 && wanted > 0; f--) {
    const path = paths[f]!;
    const size = sizes[f]!;
    if (size === 0) continue;
    // Lines continue across files only where a copy was cut mid-line; each file's end is treated as a line end.
    const endsWithNewline = newestEnd ? lastByte(path, size) === NL : true;
    newestEnd = false;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      continue;
    }
    try {
      const end = size;
      let start = -1;
      let counted = 0;
      // Walk back chunk by chunk, counting line starts, until enough are found or the file's start.
      for (let pos = size; pos > 0 && start < 0; ) {
        const from = Math.max(0, pos - CHUNK);
        const buf = Buffer.allocUnsafe(pos - from);
        readSync(fd, buf, 0, buf.length, from);
        const atEnd = pos === size;
        const off = tailOffset(buf, wanted - counted, atEnd && endsWithNewline);
        if (off >= 0) start = from + off;
        else counted += countLineStarts(buf, atEnd && endsWithNewline);
        pos = from;
      }
      if (start >= 0) {
        spans.unshift({ path, start, end });
        wanted = 0;
      } else {
        spans.unshift({ path, start: 0, end });
        wanted -= counted + 1; // the file's first line
      }
    } finally {
      closeSync(fd);
    }
  }
  return spans;
}

function countLineStarts(buf: Buffer, endsWithNewline: boolean): number {
  let c = 0;
  const last = endsWithNewline ? buf.length - 2 : buf.length - 1;
  for (let i = 0; i <= last; i++) if (buf[i] === NL) c++;
  return c;
}

/**
 * A task's log as byte chunks: every file (rotated ones first) or the last `tail` lines, then, with
 * `follow`, what the task writes next until it ends or the signal aborts. Rotation while following
 * is followed: a copy-and-truncate (a running task) finishes from the `.1` copy, a rename (a
 * restart) finishes the old file before the new one.
 */
export async function* readTaskLog(live: string, opts: ReadLogOptions = {}): AsyncGenerator<Buffer> {
  // The live file is opened first: what it holds up to `size` now is the snapshot; the follow goes on from there.
  let fd: number | null = null;
  try {
    fd = openSync(live, 'r');
  } catch {
    // Not written yet (the task has not started): a follow waits for it.
  }
  try {
    const files = taskLogFiles(live);
    const paths = [...files.rotated, live];
    const liveSize = fd === null ? 0 : fstatSync(fd).size;
    const sizes = [...files.rotated.map(sizeOf), liveSize];
    const spans = opts.tail === undefined ? paths.map((path, i) => ({ path, start: 0, end: sizes[i]! })) : tailSpans(paths, sizes, opts.tail);
    for (const span of spans) {
      if (span.path === live) {
        if (fd !== null) yield* readSpan(fd, span.start, span.end);
      } else yield* readFileSpan(span);
    }
    if (!opts.follow) return;
    yield* follow(live, fd, liveSize, opts.follow);
    fd = null; // follow closed it
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

async function* follow(live: string, firstFd: number | null, from: number, o: FollowOptions): AsyncGenerator<Buffer> {
  let fd = firstFd;
  let pos = from;
  const pollMs = o.pollMs ?? 200;
  try {
    for (;;) {
      // Read `ended` before the file: whatever the process wrote before it ended is then read below.
      const ended = o.ended();
      if (fd === null) {
        try {
          fd = openSync(live, 'r');
          pos = 0;
        } catch {
          // not there yet
        }
      }
      if (fd !== null) {
        // Which file the path names is read before the open one is drained: a rename after this is seen next time.
        let current: number | null = null;
        try {
          current = statSync(live).ino;
        } catch {
          // renamed, the new file not made yet
        }
        const st = fstatSync(fd);
        if (st.size < pos) {
          // Truncated after a copy to live.1 (rotateLiveLog): the lines past `pos` are in the copy.
          const copy = `${live}.1`;
          const copySize = sizeOf(copy);
          if (copySize > pos) yield* readFileSpan({ path: copy, start: pos, end: copySize });
          pos = 0;
        }
        // To the end as it is after each resumption, not as it was before the first yield.
        for (const chunk of readSpan(fd, pos, Number.MAX_SAFE_INTEGER)) {
          pos += chunk.length;
          yield chunk;
        }
        if (current !== st.ino) {
          // Renamed to live.1 at a restart (rotateIdleLog): the old file is finished, the new one starts at 0.
          closeSync(fd);
          fd = null;
          continue;
        }
      }
      if (ended || o.signal?.aborted) return;
      try {
        await sleep(pollMs, undefined, o.signal ? { signal: o.signal } : undefined);
      } catch {
        return; // aborted
      }
    }
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
