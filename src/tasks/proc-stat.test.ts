import { describe, expect, it } from 'vitest';
import { parseProcStat, readCmdline, readProcStat } from './proc-stat.js';

const line = (comm: string) =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1200 0 0 0 5 3 0 0 20 0 1 0 987654 12345678 900 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n`;

describe('parseProcStat', () => {
  it('reads state, ppid, pgid and start time', () => {
    expect(parseProcStat(line('node'))).toEqual({ pid: 4242, state: 'S', ppid: 1, pgid: 4242, startTime: 987654 });
  });

  it('survives command names with spaces and parentheses', () => {
    expect(parseProcStat(line('evil ) S 9 9 9 (x')).startTime).toBe(987654);
  });

  it('rejects text that is not a stat line', () => {
    expect(() => parseProcStat('garbage')).toThrow(/stat/);
    expect(() => parseProcStat('12 (x) S 1')).toThrow(/cannot parse/);
  });
});

describe('readProcStat / readCmdline', () => {
  it('describe this process and return null for a pid that does not exist', () => {
    const me = readProcStat(process.pid);
    expect(me?.pid).toBe(process.pid);
    expect(me?.startTime).toBeGreaterThan(0);
    expect(readCmdline(process.pid)?.[0]).toMatch(/node/);
    // pid_max is at most 2^22: this pid cannot exist.
    expect(readProcStat(2 ** 23)).toBeNull();
    expect(readCmdline(2 ** 23)).toBeNull();
  });
});
