import { afterEach, describe, expect, it, vi } from 'vitest';
import { trimMallocHeap, trimMallocHeapSoon } from './glibc-malloc.js';

// malloc_trim stands in: counted, and answered on a later turn as koffi's async call on the libuv pool is.
const trims = vi.hoisted(() => ({ count: 0, pending: [] as (() => void)[] }));
vi.mock('koffi', () => ({
  default: {
    load: () => ({
      func: (decl: string) =>
        decl.includes('malloc_trim')
          ? {
              async: (_pad: number, cb: (err: unknown, released: number) => void) => {
                trims.count++;
                trims.pending.push(() => cb(null, 1));
              },
            }
          : () => 1,
    }),
  },
}));

afterEach(() => {
  vi.useRealTimers();
  trims.pending.splice(0).forEach((f) => f());
});

describe('trimMallocHeap', () => {
  it('runs off the event loop, one trim at a time: a call while one runs shares it', async () => {
    trims.count = 0;
    const first = trimMallocHeap();
    const second = trimMallocHeap();
    expect(trims.count).toBe(1);
    trims.pending.shift()!();
    expect(await first).toBe(true);
    expect(await second).toBe(true);
    const third = trimMallocHeap();
    expect(trims.count).toBe(2);
    trims.pending.shift()!();
    expect(await third).toBe(true);
  });
});

describe('trimMallocHeapSoon', () => {
  it('trims once for a burst of requests, after the delay, and again for a later burst', async () => {
    vi.useFakeTimers();
    trims.count = 0;
    for (let i = 0; i < 100; i++) trimMallocHeapSoon(1000);
    vi.advanceTimersByTime(999);
    expect(trims.count).toBe(0);
    vi.advanceTimersByTime(1);
    expect(trims.count).toBe(1);
    trims.pending.shift()!();
    await vi.runAllTimersAsync();
    trimMallocHeapSoon(1000);
    vi.advanceTimersByTime(1000);
    expect(trims.count).toBe(2);
  });
});
