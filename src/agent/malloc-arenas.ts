import koffi from 'koffi';

/** glibc's mallopt parameter for the most malloc arenas the process may have (malloc.h). */
const M_ARENA_MAX = -8;

/**
 * Caps glibc's malloc arenas. glibc gives each thread that contends for malloc an arena of its own,
 * up to 8 per core, and the agent's threads (DNS workers, libuv's pool, V8's helpers) each kept one
 * mostly empty: capping them at 2 took 12 MB off an idle agent's RSS (bench/agent/thread-cpu). Same as
 * MALLOC_ARENA_MAX=2, which the agent cannot count on being in its environment. Call before threads start.
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
