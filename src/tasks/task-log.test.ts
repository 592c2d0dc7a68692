import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTaskLog, tailOffset, taskLogFiles } from './task-log.js';

let dir: string;
let live: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-tasklog-'));
  live = join(dir, 'stdout.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function text(gen: AsyncGenerator<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const b of gen) parts.push(b);
  return Buffer.concat(parts).toString();
}

const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}\n`).join('');

describe('tailOffset', () => {
  it('finds where the last n lines start, a final line without newline counting', () => {
    expect(tailOffset(Buffer.from('a\nb\nc\n'), 2, true)).toBe(2);
    expect(tailOffset(Buffer.from('a\nb\nc'), 2, false)).toBe(2);
    expect(tailOffset(Buffer.from('a\nb\n'), 3, true)).toBe(-1);
    expect(tailOffset(Buffer.from('a\n'), 0, true)).toBe(2);
  });
});

describe('taskLogFiles', () => {
  it('lists rotated copies oldest first, ignoring other files', () => {
    for (const n of ['stdout.log', 'stdout.log.1', 'stdout.log.2', 'stdout.log.10', 'stdout.log.tmp', 'meta.json']) writeFileSync(join(dir, n), '');
    expect(taskLogFiles(live)).toEqual({ rotated: [join(dir, 'stdout.log.10'), join(dir, 'stdout.log.2'), join(dir, 'stdout.log.1')], live });
  });
});

describe('readTaskLog', () => {
  it('reads every file, rotated ones first', async () => {
    writeFileSync(`${live}.2`, lines(1, 3));
    writeFileSync(`${live}.1`, lines(4, 6));
    writeFileSync(live, lines(7, 8));
    expect(await text(readTaskLog(live))).toBe(lines(1, 8));
  });

  it('tails across rotated files, reading backwards in chunks', async () => {
    writeFileSync(`${live}.1`, lines(1, 20_000));
    writeFileSync(live, lines(20_001, 20_002));
    expect(await text(readTaskLog(live, { tail: 2 }))).toBe(lines(20_001, 20_002));
    expect(await text(readTaskLog(live, { tail: 5 }))).toBe(lines(19_998, 20_002));
    // More than one 64 KiB chunk back inside the rotated file.
    expect(await text(readTaskLog(live, { tail: 12_000 }))).toBe(lines(8_003, 20_002));
    expect(await text(readTaskLog(live, { tail: 0 }))).toBe('');
    expect(await text(readTaskLog(live, { tail: 1_000_000 }))).toBe(lines(1, 20_002));
  });

  it('counts a last line still being written', async () => {
    writeFileSync(live, 'one\ntwo\nthr');
    expect(await text(readTaskLog(live, { tail: 2 }))).toBe('two\nthr');
  });

  it('reads nothing for a task that wrote nothing yet', async () => {
    expect(await text(readTaskLog(live, { tail: 10 }))).toBe('');
  });

  it('follows appends, a copy-and-truncate and a rename, and ends when the task ends', async () => {
    writeFileSync(live, lines(1, 2));
    let ended = false;
    const got: string[] = [];
    const gen = readTaskLog(live, { tail: 1, follow: { ended: () => ended, pollMs: 10 } });
    const want = async (s: string) => {
      for (;;) {
        const r = await gen.next();
        if (r.done) throw new Error(`ended before ${JSON.stringify(s)}: ${got.join('')}`);
        got.push(r.value.toString());
        if (got.join('').endsWith(s)) return;
      }
    };
    await want(lines(2, 2));
    appendFileSync(live, lines(3, 3));
    await want(lines(3, 3));
    // rotateLiveLog: copy to .1, then truncate in place; a line written before the truncate is in the copy only.
    appendFileSync(live, lines(4, 4));
    copyFileSync(live, `${live}.1`);
    truncateSync(live, 0);
    appendFileSync(live, lines(5, 5));
    await want(lines(5, 5));
    // rotateIdleLog at a restart: rename, then a new file.
    appendFileSync(live, lines(6, 6));
    renameSync(live, `${live}.1`);
    writeFileSync(live, lines(7, 7));
    await want(lines(7, 7));
    appendFileSync(live, lines(8, 8));
    ended = true;
    await want(lines(8, 8));
    expect((await gen.next()).done).toBe(true);
    expect(got.join('')).toBe(lines(2, 8));
  });

  it('stops following when its signal aborts', async () => {
    writeFileSync(live, lines(1, 1));
    const ac = new AbortController();
    const gen = readTaskLog(live, { follow: { ended: () => false, signal: ac.signal, pollMs: 10_000 } });
    expect((await gen.next()).value!.toString()).toBe(lines(1, 1));
    const next = gen.next();
    setTimeout(() => ac.abort(), 20);
    expect((await next).done).toBe(true);
  });
});
