import type { LbTable, VirtualService } from '../lb-table.js';

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

/** The dispatch rules of one v6 service: DNAT over its live backends (weights as repeated slots), reject when none. */
export function ip6ServiceRules(svc: VirtualService): string[] {
  const f = svc.frontend;
  const match = [
    f.kind === 'vip' ? `ip6 daddr ${f.address}` : f.address ? `ip6 daddr ${f.address}` : 'fib daddr type local',
    `meta l4proto ${f.protocol}`,
    ...(f.port !== 0 ? [`th dport ${f.port}`] : []),
  ].join(' ');
  const live = svc.backends.filter((b) => b.weight > 0).sort((a, b) => a.address.localeCompare(b.address));
  if (live.length === 0) return [`${match} reject`];
  const weighted = svc.scheduler === 'wrr' || svc.scheduler === 'random' || svc.scheduler === 'sh' || svc.scheduler === 'mh';
  const slots = live.flatMap((b) => Array<typeof b>(weighted ? Math.min(b.weight, 16) : 1).fill(b));
  // Every-port VIPs keep the connection's port; a fixed target port is written [addr]:port.
  const to = (b: (typeof live)[number]) => (b.port === 0 || (f.kind === 'vip' && f.port === 0) ? b.address : `[${b.address}]:${b.port}`);
  const dnat = slots.length === 1 ? `dnat to ${to(slots[0]!)}` : `dnat to ${selector(svc, slots.length)} map { ${slots.map((b, i) => `${i} : ${to(b)}`).join(', ')} }`;
  const rules = [`${match} ${dnat}`];
  if (svc.sourceNat) rules.push(`# snat ${svc.id} ${svc.sourceNat}`);
  return rules;
}

/** The whole v6 table as one replacing transaction; undefined services render a delete-only script. */
export function renderIp6Table(services: readonly VirtualService[]): string {
  const head = [`add table ip6 ${IP6_TABLE}`, `delete table ip6 ${IP6_TABLE}`];
  if (services.length === 0) return `${head.join('\n')}\n`;
  const sorted = [...services].sort((a, b) => a.id.localeCompare(b.id));
  const dispatch = sorted.flatMap((s) => ip6ServiceRules(s).filter((r) => !r.startsWith('#')));
  const snat = [...new Set(sorted.filter((s) => s.sourceNat).map((s) => `ct original ip6 daddr ${s.frontend.address ?? '::'} ct status dnat snat to ${s.sourceNat}`))];
  return [
    ...head,
    `table ip6 ${IP6_TABLE} {`,
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
    '}',
    '',
  ].join('\n');
}
