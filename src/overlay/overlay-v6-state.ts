import type { OverlayInput } from './overlay-spec.js';

// The v6 half of a dual-stack overlay, kept apart from the v4 state so a v4-only network's state (and so its
// applied digest) is exactly what it was before dual stack existed. Its kernel writes are typed operations the
// driver runs through Rtnl.

/** The v6 objects one dual-stack overlay network needs on one host. */
export interface OverlayV6State {
  /** br0's v6 address, e.g. fd6d:6573:686e:1a2b::1/64. */
  bridgeCidr: string;
  /** Each local endpoint's v6 address on its sandbox interface. */
  endpoints: { sandbox: string; ifname: string; cidr: string }[];
  /** One permanent neighbour per remote v6 address on vxlan0 (its FDB entry is the v4 one: same MAC, same VTEP). */
  peers: { ip: string; mac: string }[];
}

/** What the kernel holds of the v6 half, as read back. */
export interface ObservedOverlayV6 {
  /** Global v6 addresses on br0 (cidr text, canonical). */
  bridgeCidrs: string[];
  /** sandbox -> ifname -> its global v6 addresses. */
  sandboxCidrs: Record<string, Record<string, string[]>>;
  /** Permanent v6 neighbours on vxlan0. */
  neighbors: { ip: string; mac: string }[];
}

/** One v6 kernel write; `sandbox` null is the overlay namespace itself. */
export type OverlayV6Op =
  | { op: 'replaceAddress6' | 'deleteAddress6'; sandbox: string | null; ifname: string; cidr: string }
  | { op: 'replaceNeighbor6'; ip: string; mac: string }
  | { op: 'deleteNeighbor6'; ip: string };

/** The v6 state of a dual-stack overlay input; undefined for a v4-only network. */
export function desiredOverlayV6(input: OverlayInput): OverlayV6State | undefined {
  const { subnet6, gateway6 } = input.network;
  if (subnet6 === undefined || gateway6 === undefined) return undefined;
  const prefix = subnet6.slice(subnet6.indexOf('/'));
  return {
    bridgeCidr: `${gateway6}${prefix}`,
    endpoints: input.local
      .filter((e) => e.ip6 !== undefined)
      .map((e) => ({ sandbox: e.sandbox, ifname: e.ifname, cidr: `${e.ip6}${prefix}` }))
      .sort((a, b) => `${a.sandbox}/${a.ifname}`.localeCompare(`${b.sandbox}/${b.ifname}`)),
    peers: input.remote
      .filter((r) => r.ip6 !== undefined)
      .map((r) => ({ ip: r.ip6!, mac: r.mac.toLowerCase() }))
      .sort((a, b) => a.ip.localeCompare(b.ip)),
  };
}

/**
 * The writes that make `observed` match `desired`; empty when they match. Removals come before additions in each
 * namespace so a moved address is never held twice.
 */
export function planOverlayV6(observed: ObservedOverlayV6, desired: OverlayV6State): OverlayV6Op[] {
  const ops: OverlayV6Op[] = [];
  const addresses = (sandbox: string | null, ifname: string, held: readonly string[], want: string): void => {
    for (const cidr of held) if (cidr !== want) ops.push({ op: 'deleteAddress6', sandbox, ifname, cidr });
    if (!held.includes(want)) ops.push({ op: 'replaceAddress6', sandbox, ifname, cidr: want });
  };
  addresses(null, 'br0', observed.bridgeCidrs, desired.bridgeCidr);
  const want = new Map(desired.peers.map((p) => [p.ip, p.mac]));
  for (const n of observed.neighbors) if (!want.has(n.ip)) ops.push({ op: 'deleteNeighbor6', ip: n.ip });
  const have = new Map(observed.neighbors.map((n) => [n.ip, n.mac]));
  for (const p of desired.peers) if (have.get(p.ip) !== p.mac) ops.push({ op: 'replaceNeighbor6', ip: p.ip, mac: p.mac });
  for (const e of desired.endpoints) addresses(e.sandbox, e.ifname, observed.sandboxCidrs[e.sandbox]?.[e.ifname] ?? [], e.cidr);
  return ops;
}
