import { StoreTimeoutError } from './store-errors.js';

// gRPC deadlines alone do not bound an etcd3 call: the client's retry policy and its connection pool can wait
// before the call is even sent, and a keepalive is a stream that has no deadline of its own. So every call also
// races a timer of its own; the gRPC deadline then only cleans up the abandoned call on the wire.

/**
 * Runs `work`, handing it the absolute gRPC deadline; rejects with StoreTimeoutError after `timeoutMs` and calls
 * `onTimeout` (to cancel a stream) when the work has not settled by then.
 */
export async function withDeadline<T>(operation: string, timeoutMs: number, work: (deadline: Date) => Promise<T>, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new StoreTimeoutError(operation, timeoutMs));
    }, timeoutMs);
  });
  try {
    return await Promise.race([work(new Date(Date.now() + timeoutMs)), expired]);
  } finally {
    clearTimeout(timer);
  }
}
