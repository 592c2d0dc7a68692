import koffi from 'koffi';

/** glibc's malloc tuning for the long-lived agent: fewer arenas, and freed memory handed back. */

/** glibc's mallopt parameter for the most malloc arenas the process may have (malloc.h). */
const M_ARENA_MAX = -8;

/**
 * Caps glibc's malloc arenas. glibc gives each thread that contends for malloc an arena of its own,
 * up to 8 per core, and the agent's threads (DNS workers, libuv's pool, V8's helpers) each keep one
 * mostly empty. Called at start this caps only the arenas made after it: V8's helper threads made theirs
 * while node loaded the agent's modules. MALLOC_ARENA_MAX=2 in the environment (as the systemd unit and
 * the lab set it) caps them all, ~15 MB less RSS on an idle agent (bench/agent/thread-cpu); this is the
 * fallback for an agent started without it.
 */
export function limitMallocArenas(max = 2): boolean {
  try {
    const libc = koffi.load('libc.so.6');
    const mallopt = libc.func('int mallopt(int param, int value)') as (param: number, value: number) => number;
    return mallopt(M_ARENA_MAX, max) === 1;
  } catch {
    // Not glibc (musl has no arenas to cap): nothing to do.
    return false;
  }
}

interface MallocTrim {
  async(pad: number, cb: (err: unknown, released: number) => void): void;
}
let trim: MallocTrim | null | undefined;
let trimming: Promise<boolean> | null = null;

/**
 * Hands free malloc pages back to the kernel (glibc's malloc_trim). glibc returns only the free top
 * of its heap on its own; what a pass allocates and frees in the middle (netlink replies, nft's
 * caches, iptables-save output) stays in the process's RSS until trimmed. malloc_trim walks every free
 * chunk of every arena and took 10-66 ms after an agent's start (measured): it runs on the libuv pool, never
 * on the event loop, one at a time. Resolves to whether anything was released (false on a libc without it).
 */
export function trimMallocHeap(): Promise<boolean> {
  if (trim === undefined) {
    try {
      trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as MallocTrim;
    } catch {
      trim = null;
    }
  }
  const t = trim;
  if (!t) return Promise.resolve(false);
  // Never rejects: callers do not wait for it (void), and a rejection nobody handles would end the agent.
  trimming ??= new Promise<boolean>((resolve) => {
    try {
      t.async(0, (err, released) => resolve(!err && released === 1));
    } catch {
      resolve(false);
    }
  }).finally(() => (trimming = null));
  return trimming;
}

let trimTimer: NodeJS.Timeout | null = null;

/**
 * Trims the malloc heap once, `delayMs` after the first of a burst of calls: an adopting pass frees a
 * hundred nft contexts (~0.7 MB of cache each) a few seconds after it ends, one by one, on the libuv pool.
 */
export function trimMallocHeapSoon(delayMs = 1000): void {
  if (trimTimer) return;
  trimTimer = setTimeout(() => {
    trimTimer = null;
    void trimMallocHeap();
  }, delayMs);
  trimTimer.unref();
}
