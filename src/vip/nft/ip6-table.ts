import type { LbBackendTarget, LbTable, VirtualService } from '../lb-table.js';
import { slotShares } from './render.js';

// IPv6 VIPs get a table of their own, `ip6 meshnet6`, rather than turning the v4 table into an `inet` one: the v4
// table, its element cache, digests and read-back stay byte for byte what they were, and a namespace with no v6
// service has no v6 table at all. v6 services are few (dual-stack networks only), so the table is small and is
// rewritten whole in one transaction when it changes: a rule per service dispatching by an anonymous map.

/** The v6 table's name. */
export const IP6_TABLE = 'meshnet6';

/** True when a frontend or backend address is IPv6. */
export function isV6Address(address: string | undefined): boolean {
  return address !== undefined && address.includes(':');
}

/** Splits a table into its v4 part (for the v4 backend, unchanged) and its v6 services. */
export function splitByFamily(table: LbTable): { v4: LbTable; v6: VirtualService[] } {
  const v4: VirtualService[] = [];
  const v6: VirtualService[] = [];
  for (const s of table.services) (isV6Address(s.frontend.address) ? v6 : v4).push(s);
  return { v4: v4.length === table.services.length ? table : { services: v4 }, v6 };
}

function selector(svc: VirtualService, slots: number): string {
  if (svc.scheduler === 'sh' || svc.scheduler === 'mh') return `jhash ip6 saddr mod ${slots} seed 0x0`;
  if (svc.scheduler === 'random' || svc.scheduler === 'lc') return `numgen random mod ${slots}`;
  return `numgen inc mod ${slots}`;
}

/** Chains and sets a v6 service adds beside its dispatch rules (affinity only). */
export interface Ip6Extras {
  chains: [string, string[]][];
  sets: [string, string][];
}

/**
 * The dispatch rules of one v6 service: DNAT over its live backends, reject when none. Weights become slots as in the
 * v4 table (slotShares: reduced by their gcd, scaled down only past MAX_SLOTS), so 1:100 keeps its ratio. With
 * affinity (`k` names the service's chains and sets) a known client goes back to its backend, remembered per backend
 * in a timeout set as the v4 table and kube-proxy do.
 */
export function ip6ServiceRules(svc: VirtualService, k = 0, extras: Ip6Extras = { chains: [], sets: [] }): string[] {
  const f = svc.frontend;
  const match = [
    f.kind === 'vip' ? `ip6 daddr ${f.address}` : f.address ? `ip6 daddr ${f.address}` : 'fib daddr type local',
    `meta l4proto ${f.protocol}`,
    ...(f.port !== 0 ? [`th dport ${f.port}`] : []),
  ].join(' ');
  const live = svc.backends.filter((b) => b.weight > 0).sort((a, b) => a.address.localeCompare(b.address));
  if (live.length === 0) return [`${match} reject`];
  const shares = slotShares(svc.scheduler, live);
  const slots = live.flatMap((b, i) => Array<LbBackendTarget>(shares[i]!).fill(b));
  // Every-port VIPs keep the connection's port; a fixed target port is written [addr]:port.
  const keepsPort = (b: LbBackendTarget) => b.port === 0 || (f.kind === 'vip' && f.port === 0);
  const to = (b: LbBackendTarget) => (keepsPort(b) ? b.address : `[${b.address}]:${b.port}`);
  // Inside a map nft takes a fixed port as a concatenation (`addr . port` under `dnat ip6 to`), not [addr]:port.
  const inMap = (b: LbBackendTarget) => (keepsPort(b) ? b.address : `${b.address} . ${b.port}`);
  const rules = svc.persistenceSeconds !== undefined ? affinityRules(svc, k, match, live, slots, to, extras) : [`${match} ${pick(svc, slots, to, 'dnat', inMap)}`];
  if (svc.sourceNat) rules.push(`# snat ${svc.id} ${svc.sourceNat}`);
  return rules;
}

/** `dnat to X` for one slot, else a selector over a map of slots; with `goto` the map is a verdict map of chains. */
function pick(svc: VirtualService, slots: LbBackendTarget[], item: (b: LbBackendTarget) => string, how: 'dnat' | 'goto', inMap = item): string {
  if (slots.length === 1) return how === 'dnat' ? `dnat to ${item(slots[0]!)}` : `goto ${item(slots[0]!)}`;
  const entries = slots.map((b, i) => `${i} : ${how === 'goto' ? 'goto ' : ''}${inMap(b)}`).join(', ');
  if (how === 'goto') return `${selector(svc, slots.length)} vmap { ${entries} }`;
  return `${entries.includes(' . ') ? 'dnat ip6 to' : 'dnat to'} ${selector(svc, slots.length)} map { ${entries} }`;
}

function affinityRules(svc: VirtualService, k: number, match: string, live: LbBackendTarget[], slots: LbBackendTarget[], to: (b: LbBackendTarget) => string, extras: Ip6Extras): string[] {
  const set = (b: LbBackendTarget) => `a${k}_${live.indexOf(b)}`;
  const chain = (b: LbBackendTarget) => `b${k}_${live.indexOf(b)}`;
  for (const b of live) {
    extras.sets.push([set(b), `type ipv6_addr; flags dynamic,timeout; timeout ${svc.persistenceSeconds}s; size 65535;`]);
    extras.chains.push([chain(b), [`update @${set(b)} { ip6 saddr }`, `dnat to ${to(b)}`]]);
  }
  extras.chains.push([`s${k}`, [...live.map((b) => `ip6 saddr @${set(b)} goto ${chain(b)}`), pick(svc, slots, chain, 'goto')]]);
  return [`${match} goto s${k}`];
}

/** The whole v6 table as one replacing transaction; undefined services render a delete-only script. */
export function renderIp6Table(services: readonly VirtualService[]): string {
  const head = [`add table ip6 ${IP6_TABLE}`, `delete table ip6 ${IP6_TABLE}`];
  if (services.length === 0) return `${head.join('\n')}\n`;
  const sorted = [...services].sort((a, b) => a.id.localeCompare(b.id));
  const extras: Ip6Extras = { chains: [], sets: [] };
  const dispatch = sorted.flatMap((s, k) => ip6ServiceRules(s, k, extras).filter((r) => !r.startsWith('#')));
  // Published ports share the sandbox's address, and a policy=local one must keep its client: match the port too.
  const snatMatch = (s: VirtualService) => `ct original ip6 daddr ${s.frontend.address ?? '::'}${s.frontend.port !== 0 ? ` meta l4proto ${s.frontend.protocol} ct original proto-dst ${s.frontend.port}` : ''}`;
  const snat = [...new Set(sorted.filter((s) => s.sourceNat).map((s) => `${snatMatch(s)} ct status dnat snat to ${s.sourceNat}`))];
  return [
    ...head,
    `table ip6 ${IP6_TABLE} {`,
    ...extras.sets.map(([name, body]) => `\tset ${name} { ${body} }`),
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    '\t\tjump dispatch',
    '\t}',
    '\tchain output {',
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tjump dispatch',
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...snat.map((r) => `\t\t${r}`),
    '\t}',
    '\tchain dispatch {',
    ...dispatch.map((r) => `\t\t${r}`),
    '\t}',
    ...extras.chains.flatMap(([name, rules]) => [`\tchain ${name} {`, ...rules.map((r) => `\t\t${r}`), '\t}']),
    '}',
    '',
  ].join('\n');
}
