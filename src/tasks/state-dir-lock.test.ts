import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBootId, readProcStat } from './proc-stat.js';
import { lockStateDir, StateDirBusyError } from './state-dir-lock.js';

describe('lockStateDir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshnet-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('admits one supervisor per directory until it releases', () => {
    const release = lockStateDir(dir);
    expect(JSON.parse(readFileSync(join(dir, '.owner'), 'utf8')).pid).toBe(process.pid);
    expect(() => lockStateDir(dir)).toThrow(StateDirBusyError);
    release();
    lockStateDir(dir)();
  });

  it('takes over from a dead owner and refuses a live one', () => {
    writeFileSync(join(dir, '.owner'), JSON.stringify({ pid: 2 ** 23, startTime: 1, bootId: readBootId() }));
    lockStateDir(dir)();
    writeFileSync(join(dir, '.owner'), JSON.stringify({ pid: 1, startTime: readProcStat(1)!.startTime + 1, bootId: readBootId() }));
    lockStateDir(dir)(); // pid 1, but not the process that wrote the file
    writeFileSync(join(dir, '.owner'), JSON.stringify({ pid: 1, startTime: readProcStat(1)!.startTime, bootId: readBootId() }));
    expect(() => lockStateDir(dir)).toThrow(/owned by a running supervisor \(pid 1\)/);
  });
});
