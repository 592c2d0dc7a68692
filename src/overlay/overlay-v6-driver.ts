import { Rtnl } from '../sandbox/rtnl.js';
import { setSysctl } from '../sandbox/sysctl.js';
import { planOverlayV6, type ObservedOverlayV6, type OverlayV6Op, type OverlayV6State } from './overlay-v6-state.js';

// The v6 half of the overlay adapter, through Rtnl like the v4 half. It runs only on dual-stack networks, so a
// v4-only host never reads or writes a v6 object.

/** The sysctls that turn IPv6 on in a namespace of a dual-stack network (fresh namespaces inherit the host's choice). */
export const IPV6_ON: readonly { key: string; value: string }[] = [
  { key: 'net.ipv6.conf.all.disable_ipv6', value: '0' },
  { key: 'net.ipv6.conf.default.disable_ipv6', value: '0' },
];

async function withRtnl<T>(netns: string, fn: (r: Rtnl) => Promise<T>): Promise<T> {
  const r = Rtnl.open(netns);
  try {
    return await fn(r);
  } finally {
    r.close();
  }
}

/** Global v6 addresses per interface of one namespace. */
async function addressesIn(netns: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const a of await withRtnl(netns, (r) => r.addresses6())) (out[a.link] ??= []).push(a.cidr);
  return out;
}

/** Reads the v6 half of one overlay network from the kernel. */
export async function observeOverlayV6(overlayNetns: string, desired: OverlayV6State): Promise<ObservedOverlayV6> {
  const own = await addressesIn(overlayNetns);
  const neighbors = (await withRtnl(overlayNetns, (r) => r.neighbors6('vxlan0'))).filter((n) => n.permanent).map((n) => ({ ip: n.ip, mac: n.mac }));
  const sandboxCidrs: ObservedOverlayV6['sandboxCidrs'] = {};
  for (const sandbox of new Set(desired.endpoints.map((e) => e.sandbox))) sandboxCidrs[sandbox] = await addressesIn(sandbox);
  return { bridgeCidrs: own['br0'] ?? [], sandboxCidrs, neighbors };
}

async function runOp(op: OverlayV6Op, overlay: Rtnl): Promise<void> {
  switch (op.op) {
    case 'replaceNeighbor6':
      return overlay.replaceNeighbor6('vxlan0', op.ip, op.mac);
    case 'deleteNeighbor6':
      return overlay.deleteNeighbor6('vxlan0', op.ip);
    case 'replaceAddress6':
    case 'deleteAddress6': {
      const act = (r: Rtnl): Promise<void> => (op.op === 'replaceAddress6' ? r.replaceAddress6(op.ifname, op.cidr) : r.deleteAddress6(op.ifname, op.cidr));
      return op.sandbox === null ? act(overlay) : withRtnl(op.sandbox, act);
    }
  }
}

/** Turns IPv6 on where the network needs it and writes the difference; returns the writes it made. */
export async function applyOverlayV6(overlayNetns: string, desired: OverlayV6State): Promise<OverlayV6Op[]> {
  for (const netns of [overlayNetns, ...new Set(desired.endpoints.map((e) => e.sandbox))]) {
    for (const s of IPV6_ON) setSysctl(netns, s.key, s.value);
  }
  const ops = planOverlayV6(await observeOverlayV6(overlayNetns, desired), desired);
  if (ops.length > 0) await withRtnl(overlayNetns, async (overlay) => { for (const op of ops) await runOp(op, overlay); });
  return ops;
}
