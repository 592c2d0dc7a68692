import { existsSync, readFileSync } from 'node:fs';
import { execIn } from '../sandbox/exec.js';
import { IP6_TABLE } from '../vip/nft/ip6-table.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { withNetns } from '../sandbox/netns-switch.js';
import { boundPorts } from '../agent/task-readiness.js';
import { parseKernelTable } from '../vip/nft/read-back.js';
import { TABLE_FAMILY, TABLE_NAME } from '../vip/nft/model.js';
import { parseCountedIptablesSave } from './iptables-counters.js';
import { countConntrack } from './conntrack-counts.js';
import type { ConntrackCount, CountedIptables, LbTableView, LinkView, ListeningPorts, NamespaceViewBase } from './kernel-view.js';

/**
 * Read-only adapters for one namespace each: links and addresses (rtnetlink), iptables with
 * counters (`iptables-save -c`), the meshnet nftables table (`nft -j list table`, parsed by the
 * VIP layer's read-back), FDB and neighbours of vxlan0, and /proc tables read from inside the
 * namespace. Nothing here writes to the kernel.
 */

const TIMEOUT_MS = 15_000;

/** `path` as the view names it; null is the namespace this process runs in. */
export function pathText(path: string | null): string {
  return path ?? 'self';
}

/** The part every view has: whether the namespace is there, and its links with their addresses (`v6`: theirs too). */
export async function readBase(path: string | null, opts: { v6?: boolean } = {}): Promise<NamespaceViewBase> {
  if (path !== null && !existsSync(path)) return { path, exists: false, links: [], errors: [] };
  const base: NamespaceViewBase = { path: pathText(path), exists: true, links: [], errors: [] };
  let r: Rtnl;
  try {
    r = Rtnl.open(path);
  } catch (err) {
    // A leftover file that is no longer a mounted namespace.
    return { ...base, exists: false, errors: [(err as Error).message] };
  }
  try {
    const links = await r.links();
    const addresses = await r.addresses();
    const addresses6 = opts.v6 ? await r.addresses6() : null;
    const names = new Map(links.map((l) => [l.index, l.name]));
    base.links = links.map((l) => {
      const v: LinkView = { name: l.name, mtu: l.mtu, up: l.up, addresses: addresses.filter((a) => a.link === l.name).map((a) => a.cidr) };
      if (addresses6) v.addresses6 = addresses6.filter((a) => a.link === l.name).map((a) => a.cidr);
      if (l.kind) v.kind = l.kind;
      if (l.master !== undefined && names.has(l.master)) v.master = names.get(l.master)!;
      if (l.mac) v.mac = l.mac;
      if (l.vxlan) v.vxlan = { vni: l.vxlan.vni, port: l.vxlan.port };
      return v;
    });
  } catch (err) {
    base.errors.push((err as Error).message);
  } finally {
    r.close();
  }
  return base;
}

/** nat and filter with counters (`ipv6`: from ip6tables); errors go to `errors`. */
export async function readIptables(path: string | null, errors: string[], family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<CountedIptables> {
  try {
    const out = await execIn(path, [family === 'ipv6' ? 'ip6tables-save' : 'iptables-save', '-c'], { timeoutMs: TIMEOUT_MS });
    return parseCountedIptablesSave(out.stdout);
  } catch (err) {
    errors.push((err as Error).message);
    return {};
  }
}

/** The meshnet table as the VIP layer reads it back; null when the namespace has none. */
export async function readLbTable(path: string | null, errors: string[]): Promise<LbTableView | null> {
  const r = await execIn(path, ['nft', '-j', 'list', 'table', TABLE_FAMILY, TABLE_NAME], { timeoutMs: TIMEOUT_MS, allowFailure: true }).catch((err: Error) => {
    errors.push(err.message);
    return null;
  });
  if (!r) return null;
  if (r.code !== 0) {
    if (!/No such file or directory/.test(r.stderr)) errors.push(`nft list table ${TABLE_FAMILY} ${TABLE_NAME}: ${r.stderr.trim()}`);
    return null;
  }
  try {
    return parseKernelTable(r.stdout);
  } catch (err) {
    errors.push((err as Error).message);
    return null;
  }
}

/** The `ip6 meshnet6` table as `nft list` prints it (what traceIp6 reads); null when the namespace has none. */
export async function readIp6Table(path: string | null, errors: string[]): Promise<string | null> {
  const r = await execIn(path, ['nft', 'list', 'table', 'ip6', IP6_TABLE], { timeoutMs: TIMEOUT_MS, allowFailure: true }).catch((err: Error) => {
    errors.push(err.message);
    return null;
  });
  if (!r) return null;
  if (r.code === 0) return r.stdout;
  if (!/No such file or directory/.test(r.stderr)) errors.push(`nft list table ip6 ${IP6_TABLE}: ${r.stderr.trim()}`);
  return null;
}

function readProc(name: string): string {
  try {
    return readFileSync(`/proc/thread-self/net/${name}`, 'utf8');
  } catch {
    // No IPv6 (no tcp6), or no conntrack in this kernel: nothing of that kind.
    return '';
  }
}

/** Listening TCP and bound UDP ports, IPv4 and IPv6, read from inside the namespace. */
export function readListening(path: string | null, errors: string[]): ListeningPorts {
  try {
    return withNetns(path, () => {
      const ports = (protocol: 'tcp' | 'udp') => {
        const set = new Set([...boundPorts(readProc(protocol), protocol), ...boundPorts(readProc(`${protocol}6`), protocol)]);
        return [...set].sort((a, b) => a - b);
      };
      return { tcp: ports('tcp'), udp: ports('udp') };
    });
  } catch (err) {
    errors.push((err as Error).message);
    return { tcp: [], udp: [] };
  }
}

/** DNATed connections per frontend and backend, from the namespace's conntrack table. */
export function readConntrack(path: string | null, errors: string[]): ConntrackCount[] {
  try {
    return withNetns(path, () => countConntrack(readProc('nf_conntrack')));
  } catch (err) {
    errors.push((err as Error).message);
    return [];
  }
}

/** FDB and neighbour entries of vxlan0 in an overlay namespace. */
export async function readVxlanEntries(path: string, errors: string[]): Promise<{ fdb: Awaited<ReturnType<Rtnl['fdb']>>; neighbors: Awaited<ReturnType<Rtnl['neighbors']>> }> {
  let r: Rtnl | null = null;
  try {
    r = Rtnl.open(path);
    return { fdb: await r.fdb('vxlan0'), neighbors: await r.neighbors('vxlan0') };
  } catch (err) {
    errors.push((err as Error).message);
    return { fdb: [], neighbors: [] };
  } finally {
    r?.close();
  }
}
