import { isIpv6, subnet6Contains } from '../model/ipv6.js';
import type { OverlayInput } from './overlay-spec.js';

/** Validates the v6 half of an overlay input: a v6 address only on a dual-stack network, inside its v6 subnet, once. */
export function validateOverlayV6(input: OverlayInput, fail: (msg: string) => never): void {
  const n = input.network;
  const endpoints = [...input.local.map((e) => ({ ip6: e.ip6, who: `endpoint ${e.id}` })), ...input.remote.map((r) => ({ ip6: r.ip6, who: `remote endpoint ${r.ip}` }))];
  if (n.subnet6 === undefined) {
    if (n.gateway6 !== undefined) fail(`network ${n.name} has a v6 gateway but no v6 subnet`);
    const stray = endpoints.find((e) => e.ip6 !== undefined);
    if (stray) fail(`${stray.who} has v6 address ${stray.ip6} but network ${n.name} is not dual stack`);
    return;
  }
  if (n.gateway6 === undefined || !isIpv6(n.gateway6) || !subnet6Contains(n.subnet6, n.gateway6)) {
    fail(`v6 gateway ${String(n.gateway6)} of network ${n.name} is not inside ${n.subnet6}`);
  }
  const seen = new Map<string, string>([[n.gateway6, 'the gateway']]);
  for (const e of endpoints) {
    if (e.ip6 === undefined) continue;
    if (!subnet6Contains(n.subnet6, e.ip6)) fail(`${e.who}: v6 address ${e.ip6} is not inside ${n.subnet6}`);
    const prev = seen.get(e.ip6);
    if (prev) fail(`duplicate v6 address ${e.ip6} on network ${n.name}: ${e.who} and ${prev}`);
    seen.set(e.ip6, e.who);
  }
}
