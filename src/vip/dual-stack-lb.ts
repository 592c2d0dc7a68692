import { execIn } from '../sandbox/exec.js';
import type { ApplyReport, LbBackend, LbTable } from './lb-table.js';
import { IP6_TABLE, renderIp6Table, splitByFamily } from './nft/ip6-table.js';

/**
 * A load-balancing backend that sends v4 services to the backend it wraps (nftables or IPVS, unchanged) and v6
 * services to the `ip6 meshnet6` nftables table. The v6 table is written only when its script changes, and
 * exists only while the namespace has a v6 service: a v4-only namespace never sees a v6 write.
 */
export class DualStackLb implements LbBackend {
  private applied6 = '';

  constructor(
    private readonly inner: LbBackend,
    private readonly netns: string,
    private readonly run: (netns: string, script: string) => Promise<void> = async (ns, script) => void (await execIn(ns, ['nft', '-f', '-'], { input: script })),
  ) {}

  get kind(): LbBackend['kind'] {
    return this.inner.kind;
  }

  async apply(table: LbTable): Promise<ApplyReport> {
    const { v4, v6 } = splitByFamily(table);
    const report = await this.inner.apply(v4);
    return this.apply6(report, v6.length === 0 && this.applied6 === '' ? '' : renderIp6Table(v6), false);
  }

  async reconcile(table: LbTable): Promise<ApplyReport> {
    const { v4, v6 } = splitByFamily(table);
    const report = await this.inner.reconcile(v4);
    // A resync rewrites a v6 table that exists (drift repair), and removes one left by an earlier run.
    return this.apply6(report, v6.length > 0 || this.applied6 !== '' ? renderIp6Table(v6) : '', true);
  }

  private async apply6(report: ApplyReport, script: string, force: boolean): Promise<ApplyReport> {
    if (script === '' || (!force && script === this.applied6)) return report;
    const started = Date.now();
    await this.run(this.netns, script);
    this.applied6 = script.includes(`table ip6 ${IP6_TABLE} {`) ? script : '';
    return { changes: report.changes + 1, durationMs: report.durationMs + (Date.now() - started) };
  }

  read(): Promise<LbTable> {
    return this.inner.read();
  }

  async destroy(): Promise<void> {
    if (this.applied6 !== '') await this.run(this.netns, renderIp6Table([]));
    this.applied6 = '';
    await this.inner.destroy();
  }

  close(): void {
    this.inner.close();
  }
}
