import { setImmediate as turn } from 'node:timers/promises';

/**
 * Long synchronous work (planning or rendering 10,000 services takes most of a second) written
 * once, as a generator whose `yield`s mark where it may pause: run whole where a caller needs the
 * result now, or in slices that let the event loop turn in between, so DNS answers and store
 * events are not held up for the whole of a load.
 */
export type Steps<T> = Generator<void, T, void>;

/** Runs `steps` to the end at once. */
export function runSync<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs `steps` to the end, letting the event loop turn whenever a slice has run `sliceMs`. */
export async function runSliced<T>(steps: Steps<T>, sliceMs = 10): Promise<T> {
  let started = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - started >= sliceMs) {
      await turn();
      started = performance.now();
    }
  }
}
