/**
 * The nftables objects meshnet owns in `table ip meshnet`, as plain data: a fixed skeleton
 * (base chains, dispatch maps) plus what services add (map elements, service and backend
 * chains, affinity sets). Both the full script and the incremental plan are produced from it.
 */

export const TABLE_FAMILY = 'ip';
export const TABLE_NAME = 'meshnet';
/** `ip meshnet`, as used in every nft command. */
export const TABLE_REF = `${TABLE_FAMILY} ${TABLE_NAME}`;

/** Chain every service-less new connection to a balanced frontend is sent to. */
export const REJECT_CHAIN = 'reject-new';
/** Empty chain the dispatch points services without a selectable backend to. */
export const NO_BACKEND_CHAIN = 'no-backend';

/**
 * The maps of the skeleton and their nft declarations. Everything per service is an element
 * of one of these maps (no anonymous sets, few chains): the kernel keeps sets in a list and
 * validates every chain reachable by jumps on each commit, so per-service sets and chains make
 * each transaction cost grow with the number of services (measured: 11-39 s to load 10,000
 * services x 10 backends as chains or anonymous maps, 0.3-1 s per one-backend change).
 */
export const STATIC_MAPS = {
  /** VIP . proto . port -> goto the chain that picks a backend (the one lookup that classifies every packet). */
  'service-ips': 'type ipv4_addr . inet_proto . inet_service : verdict',
  /**
   * VIP . proto . port . slot -> backend address . port; a service with N slots owns slots 0..N-1.
   * `typeof` because a slot is a plain integer no `type` names. One map per protocol because the
   * data must name the port as `tcp dport`/`udp dport`: nft 1.0.6 cannot read `ip daddr . th dport`
   * back from the kernel, and names the protocol the DNAT rule then depends on.
   */
  'vip-slots-tcp': 'typeof ip daddr . meta l4proto . th dport . numgen inc mod 1 : ip daddr . tcp dport',
  'vip-slots-udp': 'typeof ip daddr . meta l4proto . th dport . numgen inc mod 1 : ip daddr . udp dport',
  /** VIP . proto -> selection chain, for VIPs that balance every port (frontend port 0). */
  'service-ips-any': 'type ipv4_addr . inet_proto : verdict',
  /** VIP . proto . slot -> backend address; the connection keeps its destination port. */
  'vipany-slots': 'typeof ip daddr . meta l4proto . numgen inc mod 1 : ip daddr',
  /** VIP . proto . backend -> weight, for every-port VIPs (as vip-backend-weights). */
  'vipany-backend-weights': 'type ipv4_addr . inet_proto . ipv4_addr : mark',
  /** VIP . proto of every-port services without a selectable backend -> goto reject-new. */
  'no-backend-services-any': 'type ipv4_addr . inet_proto : verdict',
  /** VIP . proto . port of services without a selectable backend -> goto reject-new. */
  'no-backend-services': 'type ipv4_addr . inet_proto . inet_service : verdict',
  /** proto . port published on every local address -> fwmark. */
  'fwmark-ports': 'type inet_proto . inet_service : mark',
  /** address . proto . port published on one address -> fwmark. */
  'fwmark-addr-ports': 'type ipv4_addr . inet_proto . inet_service : mark',
  /** fwmark -> goto the chain that picks a backend. */
  'fwmark-services': 'type mark : verdict',
  /** fwmark . slot -> backend address . port, per protocol as above. */
  'mark-slots-tcp': 'typeof meta mark . numgen inc mod 1 : ip daddr . tcp dport',
  'mark-slots-udp': 'typeof meta mark . numgen inc mod 1 : ip daddr . udp dport',
  /** fwmarks of services without a selectable backend -> goto reject-new. */
  'no-backend-marks': 'type mark : verdict',
  /** VIP . proto . port of a service with sourceNat -> source address after DNAT. */
  'service-snat': 'type ipv4_addr . inet_proto . inet_service : ipv4_addr',
  /** fwmark of a service with sourceNat -> source address after DNAT. */
  'fwmark-snat': 'type mark : ipv4_addr',
  /** Bookkeeping for read-back only (never matched): backends whose weight the slots do not show (draining ones). */
  'vip-backend-weights': 'type ipv4_addr . inet_proto . inet_service . ipv4_addr . inet_service : mark',
  /** The same for fwmark services: mark . backend . port -> weight. */
  'mark-backend-weights': 'type mark . ipv4_addr . inet_service : mark',
  /**
   * Bookkeeping, never matched: one element, the table's digest (two 32-bit lanes) -> number of
   * services, rewritten in every transaction (digest.ts). A new agent compares it with the digest
   * of the table it wants and adopts without reading the table back when they match.
   */
  'table-digest': 'type mark . mark : mark',
} as const;

export type StaticMapName = keyof typeof STATIC_MAPS;
export const STATIC_MAP_NAMES = Object.keys(STATIC_MAPS).sort() as StaticMapName[];

/** A base chain of the skeleton: hook and priority, and its fixed rules. */
export interface BaseChain {
  name: string;
  /** `type nat hook output priority -100; policy accept;` or null for a regular chain. */
  header: string | null;
  rules: readonly string[];
}

/**
 * The fixed chains. NAT runs at output (tasks: the client itself DNATs, so the backend sees the
 * real client address) and at prerouting (ingress sandbox traffic from outside). Rejects live in
 * filter chains because nft forbids `reject` in nat chains; a packet to an empty service is not
 * DNATed, so it still carries the VIP when it reaches them.
 */
export const SKELETON_CHAINS: readonly BaseChain[] = [
  // Port-specific frontends first; a VIP's every-port frontend catches the rest.
  { name: 'services', header: null, rules: ['ip daddr . meta l4proto . th dport vmap @service-ips', 'ip daddr . meta l4proto vmap @service-ips-any'] },
  // Where services without a selectable backend point: nothing to do in nat, the filter chains reject.
  { name: NO_BACKEND_CHAIN, header: null, rules: [] },
  {
    name: REJECT_CHAIN,
    header: null,
    rules: ['meta l4proto tcp reject with tcp reset', 'reject with icmp type port-unreachable'],
  },
  {
    name: 'no-backend-check',
    header: null,
    rules: [
      'ip daddr . meta l4proto . th dport vmap @no-backend-services',
      'ip daddr . meta l4proto vmap @no-backend-services-any',
      'meta mark vmap @no-backend-marks',
    ],
  },
  {
    name: 'mangle-prerouting',
    header: 'type filter hook prerouting priority -150; policy accept;',
    rules: [
      'fib daddr type local meta mark set meta l4proto . th dport map @fwmark-ports',
      'meta mark set ip daddr . meta l4proto . th dport map @fwmark-addr-ports',
    ],
  },
  {
    name: 'nat-prerouting',
    header: 'type nat hook prerouting priority -100; policy accept;',
    rules: ['jump services', 'meta mark vmap @fwmark-services'],
  },
  { name: 'nat-output', header: 'type nat hook output priority -100; policy accept;', rules: ['jump services'] },
  {
    name: 'nat-postrouting',
    header: 'type nat hook postrouting priority 100; policy accept;',
    rules: [
      'meta l4proto tcp ct status dnat snat to ct original ip daddr . meta l4proto . ct original proto-dst map @service-snat',
      'meta l4proto udp ct status dnat snat to ct original ip daddr . meta l4proto . ct original proto-dst map @service-snat',
      'ct status dnat snat to meta mark map @fwmark-snat',
    ],
  },
  { name: 'filter-input', header: 'type filter hook input priority -10; policy accept;', rules: ['ct state new jump no-backend-check'] },
  { name: 'filter-forward', header: 'type filter hook forward priority -10; policy accept;', rules: ['ct state new jump no-backend-check'] },
  {
    name: 'filter-output',
    header: 'type filter hook output priority -10; policy accept;',
    rules: ['ct state new ip daddr . meta l4proto . th dport vmap @no-backend-services', 'ct state new ip daddr . meta l4proto vmap @no-backend-services-any'],
  },
];

/** A map element's value, and the comment carried with it (service id and options, for read-back). */
export interface MapElement {
  value: string;
  comment?: string;
}

/** What services contribute to the table. Keys are nft element keys exactly as rendered. */
export interface NftModel {
  /** Selection chains and affinity service/backend chains: name -> rules in order. */
  chains: Map<string, readonly string[]>;
  /** Affinity sets: name -> declaration body (`type ipv4_addr; flags dynamic,timeout; ...`). */
  sets: Map<string, string>;
  /** Elements of the skeleton maps: map -> key -> element. */
  maps: Map<StaticMapName, Map<string, MapElement>>;
}

/** An element as nft syntax: `key comment "..." : value`. */
export function elementText(key: string, e: MapElement): string {
  return `${key}${e.comment ? ` comment "${e.comment}"` : ''} : ${e.value}`;
}

/** True when two elements are the same (value and comment). */
export function sameElement(a: MapElement | undefined, b: MapElement | undefined): boolean {
  return !!a && !!b && a.value === b.value && a.comment === b.comment;
}

/** An empty model (the table with its skeleton only). */
export function emptyModel(): NftModel {
  return { chains: new Map(), sets: new Map(), maps: new Map(STATIC_MAP_NAMES.map((n) => [n, new Map()])) };
}

/** Deterministic order of names: plain code-unit order, the same on every run. */
export function sortedKeys<K extends string>(m: Map<K, unknown>): K[] {
  return [...m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
