/**
 * Read-only adapter: a namespace's IPVS services through the generic-netlink client (no ipvsadm), and the mark and
 * SNAT rules they depend on through iptables-save, judged by ipvsTableView. Writes nothing.
 */
import { execIn } from '../sandbox/exec.js';
import { withNetns } from '../sandbox/netns-switch.js';
import { parseIptablesSave, type IptablesState } from '../mesh/iptables-save-parse.js';
import { IpvsClient, IpvsUnavailableError } from '../vip/ipvs/ipvs-client.js';
import { mayHoldSnat } from '../vip/ipvs/snat-rules.js';
import { ipvsTableView, type IpvsKernelRead } from './ipvs-table-view.js';
import type { LbTableView } from './kernel-view.js';

const TIMEOUT_MS = 15_000;

async function save(path: string | null, tool: 'iptables-save' | 'ip6tables-save', table: 'mangle' | 'nat'): Promise<IptablesState> {
  return parseIptablesSave((await execIn(path, [tool, '-t', table], { timeoutMs: TIMEOUT_MS })).stdout);
}

/** The namespace's IPVS table view; null when the kernel has no IPVS or the namespace holds no IPVS service. */
export async function readIpvsTable(path: string | null, errors: string[]): Promise<LbTableView | null> {
  let client: IpvsClient;
  try {
    client = await IpvsClient.open(path === null ? undefined : (fn) => withNetns(path, fn));
  } catch (err) {
    // An nftables-only kernel: nothing of IPVS to read, and nothing wrong.
    if (!(err instanceof IpvsUnavailableError)) errors.push((err as Error).message);
    return null;
  }
  try {
    const read: IpvsKernelRead = { services: [], mangle: new Map() };
    for (const service of await client.listServices()) read.services.push({ service, dests: await client.listDests(service.key) });
    if (read.services.length === 0) return null;
    read.mangle = await save(path, 'iptables-save', 'mangle');
    if (read.services.some((s) => s.service.key.kind === 'fwmark' && s.service.key.family === 'inet6')) read.mangle6 = await save(path, 'ip6tables-save', 'mangle');
    if (mayHoldSnat({ services: read.services.map(({ service }) => ({ service, dests: [] })) })) read.nat = await save(path, 'iptables-save', 'nat');
    return ipvsTableView(read);
  } catch (err) {
    errors.push((err as Error).message);
    return null;
  } finally {
    client.close();
  }
}
