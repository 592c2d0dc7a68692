import type { DnsCounters } from './dns-counters.js';
import type { Upstream } from './forwarder.js';
import type { NameView } from './name-view.js';
import type { TcpLimits } from './tcp-session.js';

/** Fixed settings every worker of one DnsService gets at start. */
export interface WorkerSettings {
  ttlSeconds: number;
  upstreams: Upstream[];
  forwardTimeoutMs: number;
  maxConcurrentForwards: number;
  /** Where to bind inside each namespace (tests of the service itself may use another address). */
  address: string;
  tcp: TcpLimits;
}

/** A namespace's resolver sockets as descriptors of this process: its UDP socket and its TCP listener. */
export interface SocketFds {
  udp: number;
  tcp: number;
}

/**
 * Requests from DnsService to a worker. `port` 0 lets the kernel pick the namespace's port, after `prefer` when given.
 * An attach with `fds` serves those sockets (the worker owns the descriptors from then on) instead of binding.
 */
export type WorkerRequest =
  | { op: 'attach'; reqId: number; path: string; view: NameView; port: number; prefer?: number; fds?: SocketFds }
  | { op: 'update'; path: string; view: NameView }
  | { op: 'detach'; reqId: number; path: string }
  | { op: 'close'; reqId: number }
  /** The worker's query and answer counters, summed over every namespace it has served. */
  | { op: 'stats'; reqId: number };

/** A worker's answer to a request that carries a reqId; an attach reports the port it bound. */
export interface WorkerReply {
  kind: 'reply';
  reqId: number;
  ok: boolean;
  error?: string;
  port?: number;
  /** An attach's sockets, duplicated for the service to keep: they stay open when the worker closes or dies. */
  fds?: SocketFds;
  /** The answer to `stats`. */
  counters?: DnsCounters;
}

/** A log line from a worker: workers have no logger of their own, the service logs it. */
export interface WorkerLog {
  kind: 'log';
  level: 'info' | 'warn' | 'error';
  fields: Record<string, unknown> & { event: string };
}

/** Everything a worker posts to the service. */
export type WorkerMessage = WorkerReply | WorkerLog;
