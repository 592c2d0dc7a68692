import { afterEach, describe, expect, it, vi } from 'vitest';
import { trimMallocHeapSoon } from './glibc-malloc.js';

const trims = vi.hoisted(() => ({ count: 0 }));
vi.mock('koffi', () => ({
  default: {
    load: () => ({
      func: (decl: string) => (decl.includes('malloc_trim') ? () => (trims.count++, 1) : () => 1),
    }),
  },
}));

afterEach(() => vi.useRealTimers());

describe('trimMallocHeapSoon', () => {
  it('trims once for a burst of requests, after the delay, and again for a later burst', () => {
    vi.useFakeTimers();
    trims.count = 0;
    for (let i = 0; i < 100; i++) trimMallocHeapSoon(1000);
    vi.advanceTimersByTime(999);
    expect(trims.count).toBe(0);
    vi.advanceTimersByTime(1);
    expect(trims.count).toBe(1);
    trimMallocHeapSoon(1000);
    vi.advanceTimersByTime(1000);
    expect(trims.count).toBe(2);
  });
});
