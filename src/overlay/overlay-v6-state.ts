import type { OverlayInput } from './overlay-spec.js';

// The v6 half of a dual-stack overlay, kept apart from the v4 state so a v4-only network's state (and so its
// applied digest) is exactly what it was before dual stack existed. Its kernel writes are `ip -6` batch lines.

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

/** `ip -6 -batch` lines for one namespace (null: the overlay namespace itself). */
export interface OverlayV6Batch {
  sandbox: string | null;
  lines: string[];
}

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
 * The `ip -6` lines that make `observed` match `desired`, per namespace; empty when they match. Addresses are added
 * `nodad`: every address here is allocated by the store, and duplicate detection would hold each one tentative
 * (unusable) for a second after every attach.
 */
export function planOverlayV6(observed: ObservedOverlayV6, desired: OverlayV6State): OverlayV6Batch[] {
  const own: string[] = [];
  for (const c of observed.bridgeCidrs) if (c !== desired.bridgeCidr) own.push(`addr del ${c} dev br0`);
  if (!observed.bridgeCidrs.includes(desired.bridgeCidr)) own.push(`addr replace ${desired.bridgeCidr} dev br0 nodad`);
  const want = new Map(desired.peers.map((p) => [p.ip, p.mac]));
  for (const n of observed.neighbors) if (want.get(n.ip) !== n.mac) own.push(`neigh del ${n.ip} dev vxlan0`);
  const have = new Map(observed.neighbors.map((n) => [n.ip, n.mac]));
  for (const p of desired.peers) if (have.get(p.ip) !== p.mac) own.push(`neigh replace ${p.ip} lladdr ${p.mac} dev vxlan0 nud permanent`);
  const batches: OverlayV6Batch[] = own.length > 0 ? [{ sandbox: null, lines: own }] : [];
  const bySandbox = new Map<string, string[]>();
  for (const e of desired.endpoints) {
    const held = observed.sandboxCidrs[e.sandbox]?.[e.ifname] ?? [];
    if (held.length === 1 && held[0] === e.cidr) continue;
    const lines = bySandbox.get(e.sandbox) ?? [];
    for (const c of held) if (c !== e.cidr) lines.push(`addr del ${c} dev ${e.ifname}`);
    if (!held.includes(e.cidr)) lines.push(`addr replace ${e.cidr} dev ${e.ifname} nodad`);
    bySandbox.set(e.sandbox, lines);
  }
  for (const [sandbox, lines] of bySandbox) if (lines.length > 0) batches.push({ sandbox, lines });
  return batches;
}
