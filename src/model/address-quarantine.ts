import type { KvStore, LeaseId, TxnOp } from '../store/kv-store.js';
import * as keys from './keys.js';

// A released overlay address is not handed out again at once: hosts that have not yet seen the release (a dead
// node's peers, a slow agent) still balance traffic to it, and a new task behind it would receive that traffic.
// Releasing rewrites the address's claim key to `quarantine:<former owner>` under a store lease that outlives the
// period, instead of deleting it. Every allocator already treats an existing claim key as taken (and its commit
// compares the key absent), so nothing else has to learn about quarantine, and the lease deletes the key when the
// period is over without anyone cleaning up.

/** Prefix of the value of a quarantined address claim. */
export const QUARANTINE_PREFIX = 'quarantine:';

/** Default quarantine: two lease periods of the default 10 s node lease, plus margin for slow agents. */
export const DEFAULT_QUARANTINE_SECONDS = 30;

/** An address being given up, with the claim value it had (`task:<id>`, `vip:<service>`). */
export interface ReleasedAddress {
  network: string;
  ip: string;
  owner: string;
}

/** True when a claim value marks a quarantined address. */
export function isQuarantined(claimValue: string): boolean {
  return claimValue.startsWith(QUARANTINE_PREFIX);
}

/** Quarantine leases of one Cluster: one lease covers every release made within a short window. */
export class AddressQuarantine {
  private cached: { lease: LeaseId; grantedAtMs: number } | undefined;
  private readonly reuseMs: number;

  constructor(
    private readonly store: KvStore,
    /** How long a released address stays taken; 0 releases at once. */
    readonly periodSeconds: number,
    private readonly monotonicMs: () => number = () => performance.now(),
  ) {
    // A lease granted for period + reuse window and used only within the window keeps every key it holds for
    // at least the period; sharing it saves one lease grant per released address.
    this.reuseMs = (periodSeconds * 1000) / 4;
  }

  /** The ops that release `addresses`: quarantined claim keys, or deletes when the period is 0. */
  async releaseOps(addresses: readonly ReleasedAddress[]): Promise<TxnOp[]> {
    if (addresses.length === 0) return [];
    if (this.periodSeconds <= 0) return addresses.map((a): TxnOp => ({ type: 'delete', key: keys.ipKey(a.network, a.ip) }));
    const lease = await this.lease();
    return addresses.map((a): TxnOp => ({ type: 'put', key: keys.ipKey(a.network, a.ip), value: `${QUARANTINE_PREFIX}${a.owner}`, lease }));
  }

  /** Forgets the shared lease, after a commit found it gone (e.g. revoked by an operator). */
  forget(): void {
    this.cached = undefined;
  }

  private async lease(): Promise<LeaseId> {
    const now = this.monotonicMs();
    if (this.cached !== undefined && now - this.cached.grantedAtMs <= this.reuseMs) return this.cached.lease;
    const lease = await this.store.grantLease(this.periodSeconds + this.reuseMs / 1000);
    this.cached = { lease, grantedAtMs: now };
    return lease;
  }
}
