import { NftBackend } from '../vip/nft/nft-backend.js';
import { IpvsBackend } from '../vip/ipvs/ipvs-backend.js';
import { probeIpvs } from '../vip/ipvs/ipvs-client.js';
import type { ApplyReport, LbBackend, LbTable } from '../vip/lb-table.js';
import { withNetns } from '../sandbox/netns-switch.js';
import { execIn } from '../sandbox/exec.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { IptablesWriter } from '../mesh/iptables-writer.js';

/** `--lb-backend auto` picks IPVS when the kernel has the IPVS family, nftables otherwise. */
export async function selectLbBackend(wanted: 'auto' | 'nftables' | 'ipvs', hostNetns: string | null): Promise<'nftables' | 'ipvs'> {
  if (wanted === 'nftables') return 'nftables';
  const has = await probeIpvs(hostNetns ? (fn) => withNetns(hostNetns, fn) : undefined);
  if (wanted === 'ipvs' && !has) {
    throw new Error('--lb-backend ipvs: this kernel has no IPVS (modprobe ip_vs, or use --lb-backend nftables or auto)');
  }
  return has ? 'ipvs' : 'nftables';
}

/** IPVS sockets open asynchronously; this opens one on first use inside the namespace. */
class LazyIpvsBackend implements LbBackend {
  readonly kind = 'ipvs' as const;
  private opened: Promise<IpvsBackend> | null = null;
  private readonly log: Logger;

  constructor(
    private readonly netns: string,
    log: Logger,
    private readonly iptables?: IptablesWriter,
  ) {
    this.log = log.child({ component: 'vip', backend: 'ipvs', netns });
  }

  private backend(): Promise<IpvsBackend> {
    this.opened ??= IpvsBackend.open({
      enterNamespace: (fn) => withNetns(this.netns, fn),
      // The namespace's one iptables writer carries the mark rules next to the mesh's own.
      ...(this.iptables ? { iptables: this.iptables } : { run: (argv: string[], input?: string) => execIn(this.netns, argv, { input: input ?? '', allowFailure: true }) }),
      // v6 VIPs' marks: the namespace's ip6tables writer, made only once a v6 VIP (or one left by an earlier agent) needs it.
      ...(this.iptables ? { iptables6: () => new IptablesWriter({ netns: this.netns, family: 'ipv6', log: this.log }) } : {}),
      log: (e) => this.log.info(e),
    }).then((o) => o.backend);
    return this.opened;
  }

  async apply(table: LbTable): Promise<ApplyReport> {
    return (await this.backend()).apply(table);
  }

  async reconcile(table: LbTable): Promise<ApplyReport> {
    return (await this.backend()).reconcile(table);
  }

  async read(): Promise<LbTable> {
    return (await this.backend()).read();
  }

  async destroy(): Promise<void> {
    return (await this.backend()).destroy();
  }

  /** Closes the IPVS socket once it is open (also when it is still opening); the next call opens a new one. */
  close(): void {
    const opened = this.opened;
    this.opened = null;
    opened?.then((b) => b.close()).catch(() => undefined);
  }
}

/** A load-balancing backend of `kind` for one (non-host) namespace; `log` receives its events; IPVS marks go through `iptables`. */
export function createLbBackend(kind: 'nftables' | 'ipvs', netns: string, log: Logger = silentLogger(), iptables?: IptablesWriter): LbBackend {
  // The namespace's generation, shared with its iptables writer: a periodic reconcile of a namespace no one
  // else touched skips its rebuild, and the rebuild's commit no longer sends the writer's next resync to iptables-save.
  return kind === 'ipvs' ? new LazyIpvsBackend(netns, log, iptables) : new NftBackend(netns, { log, ...(iptables ? { generations: iptables.generations } : {}) });
}
