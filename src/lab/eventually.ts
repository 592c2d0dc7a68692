/**
 * Retries `fn` until `ok` holds of its result or `timeoutMs` is up, and returns the last result either way, so
 * the caller's assertion shows what was seen (`what` names the wait for a reader; agents converge asynchronously).
 */
export async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}
