import type { Upstream } from './forwarder.js';
import type { NameView } from './name-view.js';

/** Fixed settings every worker of one DnsService gets at start. */
export interface WorkerSettings {
  ttlSeconds: number;
  upstreams: Upstream[];
  forwardTimeoutMs: number;
  maxConcurrentForwards: number;
  /** Where to bind inside each namespace (tests of the service itself may use another port). */
  address: string;
  port: number;
}

/** Requests from DnsService to a worker. */
export type WorkerRequest =
  | { op: 'attach'; reqId: number; path: string; view: NameView }
  | { op: 'update'; path: string; view: NameView }
  | { op: 'detach'; reqId: number; path: string }
  | { op: 'close'; reqId: number };

/** A worker's answer to a request that carries a reqId. */
export interface WorkerReply {
  reqId: number;
  ok: boolean;
  error?: string;
}
