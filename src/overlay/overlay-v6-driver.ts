import { execIn } from '../sandbox/exec.js';
import { setSysctl } from '../sandbox/sysctl.js';
import { planOverlayV6, type ObservedOverlayV6, type OverlayV6Batch, type OverlayV6State } from './overlay-v6-state.js';

// The v6 half of the overlay adapter. It speaks `ip -6` (iproute2, installed by scripts/setup) rather than the
// rtnetlink module, which is IPv4-only: one read and at most one batch per namespace, and only on dual-stack
// networks, so v4-only hosts never run it.

interface IpAddrJson {
  ifname?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string }[];
}
interface IpNeighJson {
  dst?: string;
  lladdr?: string;
  state?: string[];
}

/** The sysctls that turn IPv6 on in a namespace of a dual-stack network (fresh namespaces inherit the host's choice). */
export const IPV6_ON: readonly { key: string; value: string }[] = [
  { key: 'net.ipv6.conf.all.disable_ipv6', value: '0' },
  { key: 'net.ipv6.conf.default.disable_ipv6', value: '0' },
];

/** Global v6 addresses per interface, from `ip -6 -j addr show`. */
export function parseIpAddrJson(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const link of JSON.parse(text || '[]') as IpAddrJson[]) {
    if (!link.ifname) continue;
    const cidrs = (link.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope === 'global' && a.local).map((a) => `${a.local}/${a.prefixlen}`);
    if (cidrs.length > 0) out[link.ifname] = cidrs;
  }
  return out;
}

/** Permanent neighbours from `ip -6 -j neigh show`. */
export function parseIpNeighJson(text: string): { ip: string; mac: string }[] {
  return (JSON.parse(text || '[]') as IpNeighJson[])
    .filter((n) => n.dst && n.lladdr && (n.state ?? []).includes('PERMANENT'))
    .map((n) => ({ ip: n.dst!, mac: n.lladdr!.toLowerCase() }));
}

async function addrsIn(netns: string): Promise<Record<string, string[]>> {
  return parseIpAddrJson((await execIn(netns, ['ip', '-6', '-j', 'addr', 'show'])).stdout);
}

/** Reads the v6 half of one overlay network from the kernel. */
export async function observeOverlayV6(overlayNetns: string, desired: OverlayV6State): Promise<ObservedOverlayV6> {
  const own = await addrsIn(overlayNetns);
  const neigh = await execIn(overlayNetns, ['ip', '-6', '-j', 'neigh', 'show', 'dev', 'vxlan0']);
  const sandboxCidrs: ObservedOverlayV6['sandboxCidrs'] = {};
  for (const sandbox of new Set(desired.endpoints.map((e) => e.sandbox))) sandboxCidrs[sandbox] = await addrsIn(sandbox);
  return { bridgeCidrs: own['br0'] ?? [], sandboxCidrs, neighbors: parseIpNeighJson(neigh.stdout) };
}

/** Turns IPv6 on where the network needs it and writes the difference; returns the batches it ran. */
export async function applyOverlayV6(overlayNetns: string, desired: OverlayV6State): Promise<OverlayV6Batch[]> {
  for (const netns of [overlayNetns, ...new Set(desired.endpoints.map((e) => e.sandbox))]) {
    for (const s of IPV6_ON) setSysctl(netns, s.key, s.value);
  }
  const batches = planOverlayV6(await observeOverlayV6(overlayNetns, desired), desired);
  for (const b of batches) await execIn(b.sandbox ?? overlayNetns, ['ip', '-6', '-batch', '-'], { input: `${b.lines.join('\n')}\n` });
  return batches;
}
