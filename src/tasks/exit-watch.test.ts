import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitWatch } from './exit-watch.js';

describe('ExitWatch', () => {
  const watch = new ExitWatch();
  const started: number[] = [];
  const sleeper = (): number => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    started.push(child.pid!);
    return child.pid!;
  };
  const until = async (what: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  afterEach(() => {
    watch.close();
    for (const pid of started.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  it('names the watched processes that ended, and only those', async () => {
    const a = sleeper();
    const b = sleeper();
    expect(watch.add(a)).toBe(true);
    expect(watch.add(b)).toBe(true);
    expect(watch.ended()).toEqual([]);
    process.kill(b, 'SIGKILL');
    await until(() => watch.ended().length > 0);
    expect(watch.ended()).toEqual([b]);
    watch.remove(b);
    expect(watch.has(b)).toBe(false);
    expect(watch.ended()).toEqual([]);
  });

  it('refuses a process that is gone, and forgets all but the kept ones', () => {
    expect(watch.add(2 ** 22 + 12345)).toBe(false);
    const a = sleeper();
    const b = sleeper();
    watch.add(a);
    watch.add(b);
    watch.retain(new Set([a]));
    expect(watch.has(a)).toBe(true);
    expect(watch.has(b)).toBe(false);
  });
});
