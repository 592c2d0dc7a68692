import type { ApplyReport, LbBackend, LbTable, VirtualService } from './lb-table.js';
import { IP6_TABLE, renderIp6Table, splitByFamily } from './nft/ip6-table.js';
import { LibnftablesMissingError, NftContext } from './nft/libnftables.js';
import type { NftGenerations } from '../sandbox/nft-generation.js';

/** How the v6 table is written and looked for; tests pass a fake. */
export interface Ip6TableIo {
  /** Runs one nft script (one transaction). */
  run(script: string): Promise<void>;
  /** Whether the namespace holds an `ip6 meshnet6` table. */
  exists(): Promise<boolean>;
  close(): void;
}

/**
 * The v6 table through an in-process libnftables context (as the v4 nft backend), opened only on first use so a
 * v4-only namespace never gets one. Each write is recorded in the namespace's `generations` (shared with its v4
 * table and iptables writer), so they do not take it for someone else's commit and re-read or rebuild. The context
 * is freed after `idleCloseMs` without a call, as the v4 backend's: it holds nft's cache of the namespace's tables
 * (~0.7 MB), and a dual-stack node has one per task namespace.
 */
export function libnftablesIo(netns: string, generations?: NftGenerations, idleCloseMs = 5_000): Ip6TableIo {
  let ctx: NftContext | undefined;
  let idle: NodeJS.Timeout | undefined;
  const release = (): void => {
    if (idle) clearTimeout(idle);
    idle = undefined;
    ctx?.close();
    ctx = undefined;
  };
  const open = (): NftContext => {
    if (idle) clearTimeout(idle);
    idle = undefined;
    return (ctx ??= NftContext.open(netns));
  };
  const closeWhenIdle = (): void => {
    if (!ctx || idleCloseMs <= 0) return;
    idle = setTimeout(release, idleCloseMs);
    idle.unref();
  };
  return {
    run: async (script) => {
      const before = generations?.current() ?? null;
      try {
        await open().runAsync(script);
      } finally {
        closeWhenIdle();
      }
      generations?.recordOwn(before, generations.current(), 1);
    },
    exists: async () => {
      let found = false;
      try {
        found = open().run('list tables ip6').split('\n').some((l) => l.trim() === `table ip6 ${IP6_TABLE}`);
        return found;
      } catch (err) {
        // An IPVS host without libnftables never wrote a v6 table either.
        if (err instanceof LibnftablesMissingError) return false;
        throw err;
      } finally {
        // A v4-only namespace keeps no v6 context (nor its socket) after the one look.
        if (found) closeWhenIdle();
        else release();
      }
    },
    close: release,
  };
}

/**
 * Where a namespace's services go, by the wrapped backend's kind: the one place that chooses. nftables keeps its
 * `ip meshnet` table v4 only (byte for byte what it was) and every v6 service goes to `ip6 meshnet6`. IPVS serves
 * the v6 VIPs itself (AF_INET6 fwmark services fed by ip6tables marks), as libnetwork and kube-proxy's IPVS proxier
 * do; v6 published ports (fwmark frontends in the ingress sandbox) stay in `ip6 meshnet6`, where their SNAT lives.
 */
export function routeByBackend(table: LbTable, kind: LbBackend['kind']): { inner: LbTable; ip6: VirtualService[] } {
  const { v4, v6 } = splitByFamily(table);
  if (kind !== 'ipvs') return { inner: v4, ip6: v6 };
  const ip6 = v6.filter((s) => s.frontend.kind !== 'vip');
  return { inner: ip6.length === 0 ? table : { services: table.services.filter((s) => !ip6.includes(s)) }, ip6 };
}

/**
 * A load-balancing backend that sends v4 services to the backend it wraps (nftables or IPVS, unchanged) and v6
 * services where routeByBackend says: to the same backend, or to the `ip6 meshnet6` nftables table. The v6 table is
 * written only when its script changes, and exists only while the namespace has a v6 service for it: a v4-only
 * namespace never sees a v6 write.
 */
export class DualStackLb implements LbBackend {
  private applied6 = '';
  /** Whether this agent has looked for a table an earlier agent left (done once, on the first kernel re-read). */
  private looked = false;

  constructor(
    private readonly inner: LbBackend,
    netns: string,
    private readonly io: Ip6TableIo = libnftablesIo(netns),
  ) {}

  get kind(): LbBackend['kind'] {
    return this.inner.kind;
  }

  async apply(table: LbTable): Promise<ApplyReport> {
    const { inner, ip6 } = routeByBackend(table, this.inner.kind);
    const report = await this.inner.apply(inner);
    return this.apply6(report, ip6.length === 0 && this.applied6 === '' ? '' : renderIp6Table(ip6), false);
  }

  async verify(table: LbTable): Promise<ApplyReport> {
    if (!this.inner.verify) return this.apply(table);
    const { inner, ip6 } = routeByBackend(table, this.inner.kind);
    const report = await this.inner.verify(inner);
    return this.apply6(report, ip6.length === 0 && this.applied6 === '' ? '' : renderIp6Table(ip6), false);
  }

  async reconcile(table: LbTable): Promise<ApplyReport> {
    const { inner, ip6 } = routeByBackend(table, this.inner.kind);
    const report = await this.inner.reconcile(inner);
    // A resync rewrites a v6 table that exists (drift repair). A table left by an earlier agent whose v6 services
    // are gone since (or are IPVS's now) is found by one read, the first time only: a v4-only namespace gets no
    // write either way.
    if (ip6.length === 0 && this.applied6 === '' && !this.looked) {
      this.looked = true;
      return this.apply6(report, (await this.io.exists()) ? renderIp6Table([]) : '', true);
    }
    this.looked = true;
    return this.apply6(report, ip6.length > 0 || this.applied6 !== '' ? renderIp6Table(ip6) : '', true);
  }

  private async apply6(report: ApplyReport, script: string, force: boolean): Promise<ApplyReport> {
    if (script === '' || (!force && script === this.applied6)) return report;
    const started = Date.now();
    await this.io.run(script);
    this.applied6 = script.includes(`table ip6 ${IP6_TABLE} {`) ? script : '';
    return { changes: report.changes + 1, durationMs: report.durationMs + (Date.now() - started) };
  }

  read(): Promise<LbTable> {
    return this.inner.read();
  }

  async destroy(): Promise<void> {
    if (this.applied6 !== '') await this.io.run(renderIp6Table([]));
    this.applied6 = '';
    await this.inner.destroy();
  }

  close(): void {
    this.io.close();
    this.inner.close();
  }
}
