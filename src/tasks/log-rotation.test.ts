import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rotatedNames, rotateIdleLog, rotateLiveLog } from './log-rotation.js';

let dir: string;
let log: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-logrot-'));
  log = join(dir, 'stdout.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('log rotation', () => {
  it('leaves a log under the limit alone', () => {
    appendFileSync(log, 'x'.repeat(10));
    expect(rotateLiveLog(log, { maxBytes: 10, maxFiles: 3 })).toBe(false);
    expect(rotateIdleLog(log, { maxBytes: 10, maxFiles: 3 })).toBe(false);
    expect(existsSync(`${log}.1`)).toBe(false);
  });

  it('copies and truncates a live log in place: the writer\'s O_APPEND descriptor goes on at offset 0', () => {
    const fd = openSync(log, 'a');
    try {
      writeSync(fd, 'first generation\n');
      expect(rotateLiveLog(log, { maxBytes: 4, maxFiles: 3 })).toBe(true);
      writeSync(fd, 'second\n');
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(`${log}.1`, 'utf8')).toBe('first generation\n');
    expect(readFileSync(log, 'utf8')).toBe('second\n');
  });

  it('keeps at most maxFiles files, the oldest dropped', () => {
    const limits = { maxBytes: 1, maxFiles: 3 };
    for (const gen of ['a', 'b', 'c', 'd']) {
      appendFileSync(log, `${gen}${gen}`);
      rotateLiveLog(log, limits);
    }
    expect(rotatedNames(log, 3)).toEqual([`${log}.1`, `${log}.2`]);
    expect(readFileSync(`${log}.1`, 'utf8')).toBe('dd');
    expect(readFileSync(`${log}.2`, 'utf8')).toBe('cc');
    expect(existsSync(`${log}.3`)).toBe(false);
    appendFileSync(log, 'ee');
    rotateIdleLog(log, limits);
    expect(existsSync(log)).toBe(false);
    expect(readFileSync(`${log}.1`, 'utf8')).toBe('ee');
    expect(readFileSync(`${log}.2`, 'utf8')).toBe('dd');
  });

  it('with one file allowed, only truncates', () => {
    appendFileSync(log, 'abc');
    expect(rotateLiveLog(log, { maxBytes: 1, maxFiles: 1 })).toBe(true);
    expect(readFileSync(log, 'utf8')).toBe('');
    expect(existsSync(`${log}.1`)).toBe(false);
  });
});
