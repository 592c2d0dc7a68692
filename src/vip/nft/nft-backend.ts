import { silentLogger, type Logger } from '../../log/logger.js';
import { execIn } from '../../sandbox/exec.js';
import type { ApplyReport, LbBackend, LbTable } from '../lb-table.js';
import { sameDigest, parseDigestListing, type TableDigest } from './digest.js';
import { ElementCache, type PendingSync } from './element-cache.js';
import { HostNamespaceNotAllowedError, NftApplyError, NftReadError } from './errors.js';
import { NftCommandError, NftContext } from './libnftables.js';
import type { NftGenerations } from '../../sandbox/nft-generation.js';
import { TABLE_REF } from './model.js';
import type { NftPlan } from './plan.js';
import { parseKernelTable, parseUdpBackends, UDP_BACKEND_MAPS, type ParsedKernelTable } from './read-back.js';
import { conntrackDeleteArgv, staleConntrackDeletions } from './stale-conntrack.js';

export interface NftBackendOptions {
  /** Required (true) to program the namespace meshnet itself runs in (netns null). */
  allowHostNamespace?: boolean;
  /** Delete stale conntrack entries of removed backends: UDP flows, and half-open TCP attempts to published ports (default true; forks `conntrack`, only then). */
  clearUdpConntrack?: boolean;
  /**
   * Transactions up to this many bytes run on the calling thread (a one-backend change takes a
   * few ms); longer ones (loads, rebuilds) on the libuv pool, so the event loop keeps running.
   */
  maxSyncScriptBytes?: number;
  /** Where the backend reports adoptions, rebuilds and failed conntrack deletes (default: silent). */
  log?: Logger;
  /** Free the nft context after this many idle milliseconds (default 5 s; 0 keeps it open). */
  idleCloseMs?: number;
  /**
   * The namespace's nf_tables generation (sandbox/nft-generation.ts), shared with its iptables writer.
   * Given, a reconcile that finds only meshnet's own commits since this backend last knew its table
   * writes only what the table changed instead of rebuilding it: the rebuild would write the same table.
   * Without it every reconcile rebuilds.
   */
  generations?: NftGenerations;
}

/** What the last apply did, beyond the LbBackend contract (for logs and benchmarks). */
export interface NftApplyDetails {
  mode: 'full' | 'incremental' | 'none';
  /** True when this apply took over a table a previous agent left. */
  adopted: boolean;
  /** How: its digest matched the wanted table (nothing read back), or it differed and was rebuilt atomically. */
  adoptedBy: 'digest' | 'rebuild' | null;
  conntrackDeletions: number;
  /** Milliseconds computing the transaction (render + diff) and running it in libnftables. */
  planMs: number;
  nftMs: number;
}

const DEFAULT_MAX_SYNC_BYTES = 64 * 1024;
/**
 * An nft context holds nft's cache of what it last touched (about a megabyte per task namespace
 * once its table is loaded): an agent with a hundred task namespaces kept most of its heap there.
 * A context idle this long is freed; opening one again costs about half a millisecond.
 */
const DEFAULT_IDLE_CLOSE_MS = 5_000;

function isMissing(err: unknown): boolean {
  return err instanceof NftCommandError && /No such file or directory/.test(err.nftMessage);
}

/**
 * The nftables load-balancing backend for one namespace: owns `table ip meshnet` there and
 * nothing else, and speaks to the kernel through one in-process libnftables context (no process
 * per namespace). The first apply takes over what a previous agent left without flushing, so
 * running traffic keeps flowing: when the table's digest equals the wanted table's, nothing is
 * read back; else it is replaced in one transaction. Every later apply writes only what changed,
 * digest included, in one atomic transaction.
 */
export class NftBackend implements LbBackend {
  readonly kind = 'nftables' as const;
  private readonly cache = new ElementCache();
  private readonly log: Logger;
  private ctx: NftContext | null = null;
  private adoptionTried = false;
  private needsFull = false;
  /** Every use of the context runs here, one at a time: libnftables contexts are not reentrant. */
  private queue: Promise<unknown> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | null = null;
  /** The nf_tables generation at which the kernel's table was known to equal the cache (null: not known). */
  private known: number | null = null;
  /** Details of the last apply. */
  lastApply: NftApplyDetails = { mode: 'none', adopted: false, adoptedBy: null, conntrackDeletions: 0, planMs: 0, nftMs: 0 };

  constructor(
    readonly netns: string | null,
    private readonly opts: NftBackendOptions = {},
  ) {
    if (netns === null && !opts.allowHostNamespace) throw new HostNamespaceNotAllowedError();
    this.log = (opts.log ?? silentLogger()).child({ component: 'vip', backend: 'nftables', netns });
  }

  /** Makes the kernel match `table`, touching only what changed since the last apply. */
  apply(table: LbTable): Promise<ApplyReport> {
    return this.serialize(() => this.syncNow(table, false));
  }

  /** Rebuilds the whole table atomically from `table` (periodic reconcile: removes anything stale). */
  reconcile(table: LbTable): Promise<ApplyReport> {
    return this.serialize(() => this.syncNow(table, true));
  }

  /**
   * A light check: rebuilds when someone else committed in the namespace since this backend knew its
   * table (the generation moved), else writes only what changed. Without a generation it trusts its cache.
   */
  verify(table: LbTable): Promise<ApplyReport> {
    return this.serialize(() => {
      const g = this.opts.generations;
      // Unknown (a write that someone else's commit came between) counts as moved: only a rebuild knows again.
      const moved = g !== undefined && (this.known === null || g.since(this.known) === null);
      return this.syncNow(table, moved);
    });
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      this.cancelIdleClose();
      try {
        return await fn();
      } finally {
        this.armIdleClose();
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private cancelIdleClose(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Frees the context once no call used it for idleCloseMs: no call is running when the timer fires (each one cancels it first). */
  private armIdleClose(): void {
    const ms = this.opts.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS;
    if (ms <= 0 || !this.ctx) return;
    this.cancelIdleClose();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.ctx?.close();
      this.ctx = null;
    }, ms);
    this.idleTimer.unref();
  }

  /** The context, opened on first use inside the namespace (construction touches nothing). */
  private context(): NftContext {
    return (this.ctx ??= NftContext.open(this.netns));
  }

  private async syncNow(table: LbTable, full: boolean): Promise<ApplyReport> {
    const started = performance.now();
    let adoptedBy: NftApplyDetails['adoptedBy'] = null;
    let pending: PendingSync | null = null;
    let planMs = 0;
    /** What the UDP slots held before a rebuild of a table of unknown history (for conntrack cleanup). */
    let udpBefore: LbTable | null = null;
    if (!this.adoptionTried && !full) {
      const r = await this.adopt(table);
      this.adoptionTried = true;
      if (r.by === 'digest') {
        // The digest read left nft's cache of the namespace's tables in the context (~0.5 MB): an adopting
        // agent holds one per task namespace, and nothing needs it until the next change, so free it now.
        this.close();
        this.lastApply = { mode: 'none', adopted: true, adoptedBy: 'digest', conntrackDeletions: 0, planMs: r.planMs, nftMs: 0 };
        return { changes: 0, durationMs: performance.now() - started };
      }
      // No table (cold load) or a different one (rebuild): the plan made to compare digests is the full load.
      [adoptedBy, pending, planMs, udpBefore] = [r.by, r.wanted, r.planMs, r.udpBefore];
    }
    // A reconcile that finds the generation of this backend's own last transaction: the kernel still
    // holds what the cache says, so the changes alone are written (usually none) instead of a rebuild.
    const generations = this.opts.generations;
    if (full && generations) {
      const now = generations.since(this.known);
      if (now !== null) [full, this.known] = [false, now];
    }
    const p0 = performance.now();
    pending ??= await this.cache.planSliced(table, { full: full || this.needsFull });
    await pending.prepare();
    planMs += performance.now() - p0;
    const n0 = performance.now();
    const before = pending.plan.script && generations ? generations.current() : null;
    const knownBefore = before !== null && generations!.since(this.known) === before;
    try {
      await this.run(pending.plan);
    } catch (err) {
      // The kernel did not hold what the cache says (someone else changed the table, so even the
      // digest element the transaction replaces was not there): rebuild it whole next time.
      if (pending.plan.mode === 'incremental') this.needsFull = true;
      this.known = null;
      throw err;
    }
    if (pending.plan.script && generations) {
      // Known after the write when it was the only commit since `before` (one script is one transaction),
      // and the table was known before it or the write replaced it whole.
      const after = generations.current();
      this.known = generations.recordOwn(before, after, 1) && (pending.plan.mode === 'full' || knownBefore) ? after : null;
    }
    const plan = pending.plan;
    const nftMs = performance.now() - n0;
    this.needsFull = false;
    pending.commit();
    if (plan.mode === 'full') this.log.info({ event: 'vip.nft.rebuilt', services: table.services.length, ops: plan.ops, nftMs: Math.round(nftMs), adoptedBy });
    let deletions = 0;
    if (this.opts.clearUdpConntrack !== false) {
      // Only changed services can lose a backend or gain their first one: the deletions between
      // their before and after sides are those between the whole tables (frontends are unique).
      const before = udpBefore ?? { services: pending.changes.flatMap((c) => (c.before ? [c.before] : [])) };
      const after = udpBefore ? table : { services: pending.changes.flatMap((c) => (c.after ? [c.after] : [])) };
      deletions = await this.clearUdpConntrack(before, after);
    }
    this.lastApply = { mode: plan.script ? plan.mode : 'none', adopted: adoptedBy !== null, adoptedBy, conntrackDeletions: deletions, planMs, nftMs };
    return { changes: plan.script ? plan.ops : 0, durationMs: performance.now() - started };
  }

  /**
   * Runs `fn` on a context of its own, freed afterwards: nft keeps what a load or a listing touched
   * in its context's cache, and a 10k-service cache would make the next small change pay seconds
   * to release it.
   */
  private async bulk<T>(fn: (ctx: NftContext) => Promise<T>): Promise<T> {
    const ctx = NftContext.open(this.netns);
    try {
      return await fn(ctx);
    } finally {
      ctx.close();
    }
  }

  private async run(plan: NftPlan): Promise<void> {
    if (!plan.script) return;
    try {
      if (plan.script.length <= (this.opts.maxSyncScriptBytes ?? DEFAULT_MAX_SYNC_BYTES)) this.context().run(plan.script);
      else await this.bulk((ctx) => ctx.runAsync(plan.script));
    } catch (err) {
      if (err instanceof NftCommandError) throw new NftApplyError(err.nftMessage, this.netns, plan.mode);
      throw err;
    }
  }

  /**
   * Takes over the table a previous agent left. When its digest equals the digest of `table`,
   * the kernel already holds exactly that table: adopt it as is (one small read, nothing read
   * back). When it differs, the caller rebuilds it atomically from `table` (faster than reading
   * 100,000 elements back, and exact); only the UDP slots are read first, so that conntrack
   * entries of UDP backends that left meanwhile can be cleared.
   */
  private async adopt(table: LbTable): Promise<{ by: 'digest' | 'rebuild' | null; wanted: PendingSync; planMs: number; udpBefore: LbTable | null }> {
    const p0 = performance.now();
    const wanted = await this.cache.planSliced(table, { full: true });
    const planMs = performance.now() - p0;
    const generation = this.opts.generations?.current() ?? null;
    const kernel = this.readDigest();
    if (kernel.digest && sameDigest(kernel.digest, wanted.digest)) {
      wanted.commit();
      this.known = generation;
      this.log.info({ event: 'vip.nft.adopted', by: 'digest', services: table.services.length, planMs: Math.round(planMs) });
      return { by: 'digest', wanted, planMs, udpBefore: null };
    }
    if (!kernel.tableExists) return { by: null, wanted, planMs, udpBefore: null };
    const udpBefore = this.opts.clearUdpConntrack === false ? null : await this.readUdpBackends();
    this.log.info({ event: 'vip.nft.table_differs', services: table.services.length, action: 'atomic rebuild' });
    return { by: 'rebuild', wanted, planMs, udpBefore };
  }

  /** The UDP frontends and slot backends of the kernel's table (maps missing from an older layout count as empty). */
  private async readUdpBackends(): Promise<LbTable> {
    return this.bulk(async (ctx) => {
      const listings: string[] = [];
      for (const map of UDP_BACKEND_MAPS) {
        try {
          listings.push(await ctx.runAsync(`list map ${TABLE_REF} ${map}`, { json: true }));
        } catch (err) {
          if (!isMissing(err)) throw new NftReadError((err as Error).message);
        }
      }
      return parseUdpBackends(listings);
    });
  }

  /** The digest element of the kernel's table: one small synchronous read. */
  private readDigest(): { tableExists: boolean; digest: TableDigest | null } {
    const ctx = this.context();
    try {
      return { tableExists: true, digest: parseDigestListing(ctx.run(`list map ${TABLE_REF} table-digest`)) };
    } catch (err) {
      if (!isMissing(err)) throw new NftReadError((err as Error).message);
      // The map is missing: is the table (a meshnet without digests left it)?
      const tables = ctx.run('list tables');
      return { tableExists: tables.split('\n').some((l) => l.trim() === `table ${TABLE_REF}`), digest: null };
    }
  }

  /** The kernel's table as JSON, parsed (null when there is none). Runs off the event loop: 10k services take seconds. */
  private async readKernel(): Promise<ParsedKernelTable | null> {
    let json: string;
    try {
      json = await this.bulk((ctx) => ctx.runAsync(`list table ${TABLE_REF}`, { json: true }));
    } catch (err) {
      if (isMissing(err)) return null;
      throw new NftReadError((err as Error).message);
    }
    return parseKernelTable(json);
  }

  private async clearUdpConntrack(before: LbTable, after: LbTable): Promise<number> {
    let n = 0;
    for (const d of staleConntrackDeletions(before, after)) {
      const argv = conntrackDeleteArgv(d);
      const r = await execIn(this.netns, argv, { allowFailure: true, timeoutMs: 5_000 });
      const m = /(\d+) flow entries have been deleted/.exec(r.stderr + r.stdout);
      if (m) n += Number(m[1]);
      else if (r.code !== 0) this.log.warn({ event: 'vip.nft.conntrack_delete_failed', argv, stderr: r.stderr.trim() });
    }
    return n;
  }

  /** Reads back what the kernel's meshnet table implements (an empty table when there is none). */
  read(): Promise<LbTable> {
    return this.serialize(async () => (await this.readKernel())?.table ?? { services: [] });
  }

  /** Deletes the meshnet table (missing is fine); the next apply loads it afresh. */
  destroy(): Promise<void> {
    return this.serialize(async () => {
      try {
        await this.bulk((ctx) => ctx.runAsync(`add table ${TABLE_REF}\ndelete table ${TABLE_REF}`));
      } catch (err) {
        if (err instanceof NftCommandError) throw new NftApplyError(err.nftMessage, this.netns, 'full');
        throw err;
      }
      this.cache.invalidate();
      this.adoptionTried = false;
      this.known = null;
    });
  }

  /** Whether an nft context is open now (it is freed after idleCloseMs without a call). */
  get contextOpen(): boolean {
    return this.ctx !== null;
  }

  /** Releases the netlink socket and nft context, leaving the table in place (the namespace went away, or the agent stops). */
  close(): void {
    this.cancelIdleClose();
    this.ctx?.close();
    this.ctx = null;
  }
}
