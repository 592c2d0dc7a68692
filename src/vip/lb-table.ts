/**
 * The load-balancing table: what a namespace's kernel should do with traffic to service
 * frontends, as plain data. Computed by pure code; applied by a backend (nftables or IPVS)
 * that holds no policy of its own.
 */

export type L4Protocol = 'tcp' | 'udp';

/** rr/wrr/random spread, lc least-connections (IPVS only; nftables approximates with random), sh/mh source hashing. */
export type Scheduler = 'rr' | 'wrr' | 'lc' | 'sh' | 'mh' | 'random';

/**
 * A service VIP reached by tasks (east-west): match on destination address, protocol and port.
 * Port 0 means every port (Swarm's VIP semantics): the connection keeps its destination port and
 * backends are given with port 0; a VIP's port-specific frontends take precedence over it.
 */
export interface VipFrontend {
  kind: 'vip';
  address: string;
  protocol: L4Protocol;
  port: number;
}

/**
 * A published port in the ingress sandbox (north-south): packets to `port` (on `address` when
 * given, else any local address) are marked with `mark` and balanced as one fwmark service.
 */
export interface FwmarkFrontend {
  kind: 'fwmark';
  mark: number;
  protocol: L4Protocol;
  port: number;
  address?: string;
}

export type Frontend = VipFrontend | FwmarkFrontend;

export interface LbBackendTarget {
  address: string;
  /** 0 keeps the frontend's port (IPVS fwmark services use 0 for "same port"). */
  port: number;
  /** 0 = draining: established connections finish, no new ones are sent here. */
  weight: number;
}

export interface VirtualService {
  /** Stable identity, unique in the table, safe as an nft chain suffix: [a-z0-9_-], at most 48 chars. */
  id: string;
  frontend: Frontend;
  scheduler: Scheduler;
  /** Client affinity: the same client address reaches the same backend for this long after its last packet. */
  persistenceSeconds?: number;
  /** Rewrite the source to this address after balancing (ingress SNAT), so replies come back the same way. */
  sourceNat?: string;
  backends: LbBackendTarget[];
}

export interface LbTable {
  services: VirtualService[];
}

/** What an apply did, for logs and benchmarks. */
export interface ApplyReport {
  /** Kernel objects (elements, rules, services, destinations) written or deleted. */
  changes: number;
  /** Milliseconds spent applying. */
  durationMs: number;
}

/** A kernel load-balancing backend for one network namespace. */
export interface LbBackend {
  readonly kind: 'nftables' | 'ipvs';
  /** Make the kernel match `table`, touching only what differs from what it has. */
  apply(table: LbTable): Promise<ApplyReport>;
  /**
   * Make the kernel match `table` as a whole, removing whatever else is there (the periodic full
   * resync: it also prunes), atomically, so established connections keep flowing.
   */
  reconcile(table: LbTable): Promise<ApplyReport>;
  /**
   * A light check (absent: apply): reconcile when the kernel may have been changed behind this backend's
   * back, else apply. The nftables backend tells by the namespace's nf_tables generation.
   */
  verify?(table: LbTable): Promise<ApplyReport>;
  /** Read back what the kernel holds for meshnet (only meshnet's own objects). */
  read(): Promise<LbTable>;
  /** Remove everything this backend created in the namespace. */
  destroy(): Promise<void>;
  /** Release sockets, contexts and processes, leaving the kernel state in place (the namespace went away, or the agent stops). */
  close(): void;
}
