import { execIn } from '../../sandbox/exec.js';
import type { ApplyReport, LbBackend, LbTable } from '../lb-table.js';
import { ElementCache } from './element-cache.js';
import { HostNamespaceNotAllowedError, NftApplyError, NftReadError } from './errors.js';
import { TABLE_REF } from './model.js';
import type { NftPlan } from './plan.js';
import { NftSession } from './nft-session.js';
import { parseKernelTable } from './read-back.js';
import { conntrackDeleteArgv, udpConntrackDeletions } from './udp-conntrack.js';

export interface NftBackendOptions {
  /** Required (true) to program the namespace meshnet itself runs in (netns null). */
  allowHostNamespace?: boolean;
  /** Incremental changes through a warm `nft -i` (default) or a new `nft -f -` each time. */
  transport?: 'session' | 'oneshot';
  /** Incremental scripts longer than this go through `nft -f -` instead of one session line. */
  maxSessionScriptBytes?: number;
  /** Delete stale UDP conntrack entries of removed backends (default true; needs `conntrack`). */
  clearUdpConntrack?: boolean;
  timeoutMs?: number;
}

/** What the last apply did, beyond the LbBackend contract (for logs and benchmarks). */
export interface NftApplyDetails {
  mode: 'full' | 'incremental' | 'none';
  adopted: boolean;
  conntrackDeletions: number;
  /** Milliseconds computing the transaction (render + diff) and running it in nft. */
  planMs: number;
  nftMs: number;
}

function isMissingTable(stderr: string): boolean {
  return /No such file or directory/.test(stderr);
}

/**
 * The nftables load-balancing backend for one namespace: owns `table ip meshnet` there and
 * nothing else. The first apply adopts what a previous agent left (no flush: running traffic
 * keeps flowing), then every apply writes only what changed, in one atomic transaction.
 */
export class NftBackend implements LbBackend {
  readonly kind = 'nftables' as const;
  private readonly cache = new ElementCache();
  private readonly session: NftSession;
  private adoptionTried = false;
  private adoptedUnverified = false;
  private needsFull = false;
  private syncing: Promise<unknown> = Promise.resolve();
  /** Details of the last apply. */
  lastApply: NftApplyDetails = { mode: 'none', adopted: false, conntrackDeletions: 0, planMs: 0, nftMs: 0 };

  constructor(
    readonly netns: string | null,
    private readonly opts: NftBackendOptions = {},
  ) {
    if (netns === null && !opts.allowHostNamespace) throw new HostNamespaceNotAllowedError();
    this.session = new NftSession(netns, opts.timeoutMs ?? 10_000);
  }

  /** Makes the kernel match `table`, touching only what changed since the last apply. */
  async apply(table: LbTable): Promise<ApplyReport> {
    return this.sync(table, false);
  }

  /** Rebuilds the whole table atomically from `table` (periodic reconcile: removes anything stale). */
  async reconcile(table: LbTable): Promise<ApplyReport> {
    return this.sync(table, true);
  }

  /** Syncs run one at a time: each plans against what the previous one committed. */
  private sync(table: LbTable, full: boolean): Promise<ApplyReport> {
    const next = this.syncing.then(() => this.syncNow(table, full));
    this.syncing = next.catch(() => undefined);
    return next;
  }

  private async syncNow(table: LbTable, full: boolean): Promise<ApplyReport> {
    const started = performance.now();
    let adopted = false;
    if (!this.adoptionTried && !full) {
      this.adoptionTried = true;
      adopted = await this.adopt();
    }
    const prevTable = this.cache.lastTable;
    const p0 = performance.now();
    let pending = this.cache.plan(table, { full: full || this.needsFull });
    const planMs = performance.now() - p0;
    const n0 = performance.now();
    try {
      await this.run(pending.plan);
    } catch (err) {
      // The kernel did not hold what the cache says (someone else changed the table): the
      // next apply rebuilds it whole instead of failing again on the same stale entry.
      if (pending.plan.mode === 'incremental') this.needsFull = true;
      // A table adopted from a previous agent may differ from what its read-back renders to
      // (another meshnet version): fall back to one atomic rebuild instead of failing.
      if (!(err instanceof NftApplyError) || pending.plan.mode !== 'incremental' || !this.adoptedUnverified) throw err;
      pending = this.cache.plan(table, { full: true });
      await this.run(pending.plan);
    }
    const plan = pending.plan;
    const nftMs = performance.now() - n0;
    this.adoptedUnverified = false;
    this.needsFull = false;
    pending.commit();
    const deletions = this.opts.clearUdpConntrack === false ? 0 : await this.clearUdpConntrack(prevTable, table);
    this.lastApply = { mode: plan.script ? plan.mode : 'none', adopted, conntrackDeletions: deletions, planMs, nftMs };
    return { changes: plan.script ? plan.ops : 0, durationMs: performance.now() - started };
  }

  private async run(plan: NftPlan): Promise<void> {
    if (!plan.script) return;
    const maxBytes = this.opts.maxSessionScriptBytes ?? 256 * 1024;
    if (plan.mode === 'incremental' && this.opts.transport !== 'oneshot' && plan.script.length <= maxBytes) {
      try {
        await this.session.run(plan.script);
      } catch (err) {
        throw new NftApplyError((err as Error).message, this.netns, plan.mode);
      }
      return;
    }
    const r = await execIn(this.netns, ['nft', '-f', '-'], { input: plan.script, allowFailure: true, timeoutMs: this.opts.timeoutMs ?? 120_000 });
    if (r.code !== 0) throw new NftApplyError(r.stderr || r.stdout, this.netns, plan.mode);
    // Start the session now (not awaited), so the first incremental change does not pay for nft's start.
    if (this.opts.transport !== 'oneshot') this.session.warm().catch(() => undefined);
  }

  /** Reads the existing table and takes it as the starting point; false when there is none to adopt. */
  private async adopt(): Promise<boolean> {
    const r = await execIn(this.netns, ['nft', '-j', 'list', 'table', TABLE_REF], { allowFailure: true, timeoutMs: this.opts.timeoutMs ?? 120_000 });
    if (r.code !== 0) {
      if (isMissingTable(r.stderr)) return false;
      throw new NftReadError(r.stderr.trim());
    }
    const parsed = parseKernelTable(r.stdout);
    if (!parsed.skeletonComplete) return false;
    this.cache.adopt(parsed.table);
    this.adoptedUnverified = true;
    return true;
  }

  private async clearUdpConntrack(prev: LbTable | null, next: LbTable): Promise<number> {
    let n = 0;
    for (const d of udpConntrackDeletions(prev, next)) {
      const r = await execIn(this.netns, conntrackDeleteArgv(d), { allowFailure: true, timeoutMs: 5_000 });
      const m = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
      if (m) n += Number(m[1]);
      else if (r.code !== 0) {
        process.stderr.write(
          JSON.stringify({ event: 'vip.nft.conntrack_delete_failed', netns: this.netns, argv: conntrackDeleteArgv(d), stderr: r.stderr.trim() }) + '\n',
        );
      }
    }
    return n;
  }

  /** Reads back what the kernel's meshnet table implements (an empty table when there is none). */
  async read(): Promise<LbTable> {
    const r = await execIn(this.netns, ['nft', '-j', 'list', 'table', TABLE_REF], { allowFailure: true, timeoutMs: this.opts.timeoutMs ?? 120_000 });
    if (r.code !== 0) {
      if (isMissingTable(r.stderr)) return { services: [] };
      throw new NftReadError(r.stderr.trim());
    }
    return parseKernelTable(r.stdout).table;
  }

  /** Deletes the meshnet table (missing is fine) and ends the nft session. */
  async destroy(): Promise<void> {
    this.session.close();
    const r = await execIn(this.netns, ['nft', '-f', '-'], { input: `add table ${TABLE_REF}\ndelete table ${TABLE_REF}\n`, allowFailure: true });
    if (r.code !== 0) throw new NftApplyError(r.stderr, this.netns, 'full');
    this.cache.invalidate();
    this.adoptionTried = false;
  }

  /** Ends the nft session, leaving the table in place (agent shutdown). */
  close(): void {
    this.session.close();
  }
}
