import type { L4Protocol, LbBackendTarget, LbTable, Scheduler, VirtualService } from '../lb-table.js';
import {
  elementText,
  emptyModel,
  NO_BACKEND_CHAIN,
  REJECT_CHAIN,
  SKELETON_CHAINS,
  sortedKeys,
  STATIC_MAP_NAMES,
  STATIC_MAPS,
  TABLE_REF,
  type MapElement,
  type NftModel,
  type StaticMapName,
} from './model.js';
import { combine, definitionKey, digestTerm, setDigestElement, type TableDigest } from './digest.js';
import { runSync, type Steps } from './sliced.js';
import { validateLbTable } from './validate-table.js';

/** Most slots one service gets; larger weight ratios are scaled down to fit (at least one slot each). */
export const MAX_SLOTS = 256;

/** How a scheduler picks among slots: a counter (rr-like), a random number, or a hash of the client address. */
export type SelectorKind = 'inc' | 'random' | 'hash';

const SELECTOR: Record<Scheduler, SelectorKind> = { rr: 'inc', wrr: 'inc', random: 'random', lc: 'random', sh: 'hash', mh: 'hash' };
/** Weight-aware schedulers give each backend slots in proportion to its weight; the others one slot each. */
const WEIGHTED: Record<Scheduler, boolean> = { rr: false, lc: false, wrr: true, random: true, sh: true, mh: true };

/** Name of an affinity service's own chain. */
export function serviceChainName(serviceId: string): string {
  return `svc-${serviceId}`;
}

/** Name of a backend chain of an affinity service; '/' cannot occur in a service id, so it splits back. */
export function backendChainName(serviceId: string, b: Pick<LbBackendTarget, 'address' | 'port'>): string {
  return `be-${serviceId}/${b.address}/${b.port}`;
}

/** Name of the affinity set of one backend of a service (clients recently sent there). */
export function affinitySetName(serviceId: string, b: Pick<LbBackendTarget, 'address' | 'port'>): string {
  return `aff-${serviceId}/${b.address}/${b.port}`;
}

/** Name of the shared chain that picks one of `slots` slots of any VIP (or fwmark) service of a protocol. */
export function selectionChainName(frontend: 'vip' | 'vipany' | 'mark', protocol: L4Protocol, kind: SelectorKind, slots: number): string {
  return `${frontend}-${protocol}-${kind}-${slots}`;
}

/** A mark as nft lists it (fixed width so keys compare equal to read-back). */
export function markText(mark: number): string {
  return `0x${mark.toString(16).padStart(8, '0')}`;
}

function selectorExpr(kind: SelectorKind, modulus: number): string {
  if (kind === 'inc') return `numgen inc mod ${modulus}`;
  if (kind === 'random') return `numgen random mod ${modulus}`;
  return `jhash ip saddr mod ${modulus} seed 0x0`;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Address then port as one number (below 2^48), so sorting parses each address once, not per comparison. */
function backendOrder(b: LbBackendTarget): number {
  const [a0, a1, a2, a3] = b.address.split('.').map(Number);
  return (((a0! * 256 + a1!) * 256 + a2!) * 256 + a3!) * 65536 + b.port;
}

/** The backends in address order, so that equal sets render equally. */
export function sortedBackends(backends: readonly LbBackendTarget[]): LbBackendTarget[] {
  return backends
    .map((b) => [backendOrder(b), b] as const)
    .sort((x, y) => x[0] - y[0])
    .map(([, b]) => b);
}

/** Slots per selectable backend: 1 each, or proportional to weight (reduced by the gcd, scaled to MAX_SLOTS). */
export function slotShares(scheduler: Scheduler, selectable: readonly LbBackendTarget[]): number[] {
  if (selectable.length === 0) return [];
  if (!WEIGHTED[scheduler]) return selectable.map(() => 1);
  const divisor = selectable.map((b) => b.weight).reduce(gcd);
  let shares = selectable.map((b) => b.weight / divisor);
  const total = shares.reduce((a, b) => a + b, 0);
  if (total > MAX_SLOTS) {
    const room = Math.max(MAX_SLOTS, selectable.length);
    shares = selectable.map((b) => Math.max(1, Math.floor((b.weight * room) / (total * divisor))));
  }
  return shares;
}

/** The element comment that carries what the kernel objects cannot say: id, scheduler, persistence. */
export function serviceComment(svc: VirtualService): string {
  const parts = [`id=${svc.id}`, `sched=${svc.scheduler}`];
  if (svc.persistenceSeconds !== undefined) parts.push(`persist=${svc.persistenceSeconds}`);
  return parts.join(' ');
}

/** The backend as the slot maps hold it (an every-port VIP's slots hold only the address). */
function target(b: LbBackendTarget, anyPort = false): string {
  return anyPort ? b.address : `${b.address} . ${b.port}`;
}

/**
 * Affinity services keep kube-proxy's shape: a service chain that first sends known clients to
 * their backend, then picks one by a cascade of comparisons (rule i takes share_i / remaining),
 * and backend chains that remember the client in a per-backend timeout set. They are the only
 * per-service chains, so tables without affinity stay element-only.
 */
function renderAffinity(frag: ServiceFragment, svc: VirtualService, backends: LbBackendTarget[], selectable: LbBackendTarget[], shares: number[]): string {
  const chain = serviceChainName(svc.id);
  const rules: string[] = [];
  for (const b of selectable) rules.push(`ip saddr @${affinitySetName(svc.id, b)} goto ${backendChainName(svc.id, b)}`);
  let remaining = shares.reduce((a, b) => a + b, 0);
  const kind = SELECTOR[svc.scheduler];
  selectable.forEach((b, i) => {
    const share = shares[i]!;
    const go = `goto ${backendChainName(svc.id, b)}`;
    if (share === remaining) rules.push(go);
    else rules.push(`${kind === 'hash' ? `jhash ip saddr mod ${remaining} seed 0x${(i + 1).toString(16)}` : selectorExpr(kind, remaining)} ${share === 1 ? '0' : `0-${share - 1}`} ${go}`);
    remaining -= share;
  });
  frag.chains.push([chain, rules]);
  for (const b of backends) {
    // An every-port VIP keeps the connection's port: DNAT the address only.
    const to = svc.frontend.kind === 'vip' && svc.frontend.port === 0 ? b.address : `${b.address}:${b.port}`;
    frag.chains.push([
      backendChainName(svc.id, b),
      [`update @${affinitySetName(svc.id, b)} { ip saddr }`, `meta l4proto ${svc.frontend.protocol} dnat to ${to}`],
    ]);
    frag.sets.push([affinitySetName(svc.id, b), `type ipv4_addr; flags dynamic,timeout; timeout ${svc.persistenceSeconds}s; size 65535;`]);
  }
  return chain;
}

/** What one service contributes to the table: map elements, its own chains and sets, the shared chains it uses. */
export interface ServiceFragment {
  elements: Array<[StaticMapName, string, MapElement]>;
  chains: Array<[string, readonly string[]]>;
  sets: Array<[string, string]>;
  /** Selection chains shared by every service with the same protocol, selector and slot count. */
  shared: Array<[string, readonly string[]]>;
}

/** Renders one (already validated) service. */
export function renderService(svc: VirtualService): ServiceFragment {
  const frag: ServiceFragment = { elements: [], chains: [], sets: [], shared: [] };
  const put = (map: StaticMapName, key: string, e: MapElement) => frag.elements.push([map, key, e]);
  // Port 0 means "the frontend's port"; it is rendered (and read back) as that port.
  const backends = sortedBackends(svc.backends.map((b) => (b.port === 0 ? { ...b, port: svc.frontend.port } : b)));
  const selectable = backends.filter((b) => b.weight > 0);
  const shares = slotShares(svc.scheduler, selectable);
  const slots = shares.reduce((a, b) => a + b, 0);
  const f = svc.frontend;
  const anyPort = f.kind === 'vip' && f.port === 0;
  const family = f.kind === 'vip' ? (anyPort ? 'vipany' : 'vip') : 'mark';
  const svcKey = f.kind === 'vip' ? (anyPort ? `${f.address} . ${f.protocol}` : `${f.address} . ${f.protocol} . ${f.port}`) : markText(f.mark);

  let dispatch: string;
  if (selectable.length === 0) dispatch = NO_BACKEND_CHAIN;
  else if (svc.persistenceSeconds !== undefined) dispatch = renderAffinity(frag, svc, backends, selectable, shares);
  else {
    const shared = selectionChain(family, f.protocol, SELECTOR[svc.scheduler], slots);
    dispatch = shared[0];
    const slotMap: StaticMapName = anyPort ? 'vipany-slots' : `${family as 'vip' | 'mark'}-slots-${f.protocol}`;
    let slot = 0;
    selectable.forEach((b, i) => {
      for (let n = 0; n < shares[i]!; n++) put(slotMap, `${svcKey} . ${slot++}`, { value: target(b, anyPort) });
    });
    frag.shared.push(shared);
  }

  // Weights the slots cannot show (draining backends, weights an unweighted scheduler ignores).
  const weightMap: StaticMapName = family === 'vip' ? 'vip-backend-weights' : family === 'vipany' ? 'vipany-backend-weights' : 'mark-backend-weights';
  backends.forEach((b) => {
    const i = selectable.indexOf(b);
    const shown = i < 0 ? 0 : WEIGHTED[svc.scheduler] ? shares[i]! : 1;
    if (i < 0 || b.weight !== shown || svc.persistenceSeconds !== undefined) {
      put(weightMap, `${svcKey} . ${target(b, anyPort)}`, { value: markText(b.weight) });
    }
  });

  const comment = serviceComment(svc);
  if (anyPort) {
    put('service-ips-any', svcKey, { value: `goto ${dispatch}`, comment });
    if (selectable.length === 0) put('no-backend-services-any', svcKey, { value: `goto ${REJECT_CHAIN}` });
  } else if (f.kind === 'vip') {
    put('service-ips', svcKey, { value: `goto ${dispatch}`, comment });
    if (selectable.length === 0) put('no-backend-services', svcKey, { value: `goto ${REJECT_CHAIN}` });
    if (svc.sourceNat) put('service-snat', svcKey, { value: svc.sourceNat });
  } else {
    if (f.address) put('fwmark-addr-ports', `${f.address} . ${f.protocol} . ${f.port}`, { value: svcKey });
    else put('fwmark-ports', `${f.protocol} . ${f.port}`, { value: svcKey });
    put('fwmark-services', svcKey, { value: `goto ${dispatch}`, comment });
    if (selectable.length === 0) put('no-backend-marks', svcKey, { value: `goto ${REJECT_CHAIN}` });
    if (svc.sourceNat) put('fwmark-snat', svcKey, { value: svc.sourceNat });
  }
  return frag;
}

/** The shared selection chain a service dispatches to (name, rules), without rendering the rest; null when it uses none. */
export function sharedChainOf(svc: VirtualService): [string, readonly string[]] | null {
  if (svc.persistenceSeconds !== undefined) return null;
  const selectable = svc.backends.filter((b) => b.weight > 0);
  if (selectable.length === 0) return null;
  // The slot count does not depend on backend order, so no sort is needed here.
  const slots = slotShares(svc.scheduler, selectable).reduce((a, b) => a + b, 0);
  const f = svc.frontend;
  const family = f.kind === 'vip' ? (f.port === 0 ? 'vipany' : 'vip') : 'mark';
  return selectionChain(family, f.protocol, SELECTOR[svc.scheduler], slots);
}

function selectionChain(family: 'vip' | 'vipany' | 'mark', protocol: L4Protocol, kind: SelectorKind, slots: number): [string, readonly string[]] {
  return [selectionChainName(family, protocol, kind, slots), [selectionRule(family, protocol, kind, slots)]];
}

/**
 * Services that exercise every renderer feature. Their rendering is part of every digest's
 * layout term, so a table written by a meshnet that renders differently never matches.
 */
const PROBE_SERVICES: readonly VirtualService[] = [
  { id: 'p1', frontend: { kind: 'vip', address: '10.0.0.1', protocol: 'tcp', port: 80 }, scheduler: 'rr', sourceNat: '10.0.0.9', backends: [{ address: '10.0.1.1', port: 8080, weight: 1 }, { address: '10.0.1.2', port: 0, weight: 0 }] },
  { id: 'p2', frontend: { kind: 'vip', address: '10.0.0.2', protocol: 'udp', port: 53 }, scheduler: 'wrr', backends: [{ address: '10.0.1.1', port: 53, weight: 300 }, { address: '10.0.1.3', port: 53, weight: 1 }] },
  { id: 'p3', frontend: { kind: 'vip', address: '10.0.0.3', protocol: 'tcp', port: 0 }, scheduler: 'sh', persistenceSeconds: 60, backends: [{ address: '10.0.1.4', port: 0, weight: 1 }, { address: '10.0.1.5', port: 0, weight: 2 }] },
  { id: 'p4', frontend: { kind: 'fwmark', mark: 256, protocol: 'tcp', port: 8080 }, scheduler: 'random', sourceNat: '10.255.0.2', backends: [{ address: '10.255.0.5', port: 0, weight: 1 }] },
  { id: 'p5', frontend: { kind: 'fwmark', mark: 257, protocol: 'udp', port: 9000, address: '192.168.1.1' }, scheduler: 'mh', backends: [] },
  { id: 'p6', frontend: { kind: 'vip', address: '10.0.0.6', protocol: 'udp', port: 0 }, scheduler: 'lc', backends: [{ address: '10.0.1.6', port: 0, weight: 3 }, { address: '10.0.1.7', port: 0, weight: 1 }] },
];
let layout: TableDigest | undefined;

/** The part of every digest that stands for the skeleton and the way services are rendered. */
export function layoutTerm(): TableDigest {
  return (layout ??= digestTerm(JSON.stringify(['layout', STATIC_MAPS, SKELETON_CHAINS, PROBE_SERVICES.map(renderService)])));
}

/** The digest of the table `services` render to: what map `table-digest` holds for it. */
export function tableDigest(services: readonly VirtualService[]): TableDigest {
  let digest = layoutTerm();
  for (const svc of services) digest = combine(digest, digestTerm(definitionKey(svc)!));
  return digest;
}

/** Adds a fragment's objects to a model (shared chains once). */
export function addFragment(model: NftModel, frag: ServiceFragment): void {
  for (const [map, key, e] of frag.elements) model.maps.get(map)!.set(key, e);
  for (const [name, rules] of frag.chains) model.chains.set(name, rules);
  for (const [name, rules] of frag.shared) model.chains.set(name, rules);
  for (const [name, decl] of frag.sets) model.sets.set(name, decl);
}

/** Computes the nft objects for `table` (validated first; throws InvalidLbTableError). */
export function renderModel(table: LbTable): NftModel {
  validateLbTable(table);
  const model = emptyModel();
  for (const svc of table.services) addFragment(model, renderService(svc));
  setDigestElement(model, tableDigest(table.services), table.services.length);
  return model;
}

/** The one rule of a shared selection chain: DNAT to the slot of this packet's service. */
function selectionRule(family: 'vip' | 'vipany' | 'mark', protocol: L4Protocol, kind: SelectorKind, slots: number): string {
  const sel = selectorExpr(kind, slots);
  // nft lists `dnat ip to` as `dnat to`: render it that way so read-back text compares equal.
  if (family === 'vipany') return `meta l4proto ${protocol} dnat to ip daddr . meta l4proto . ${sel} map @vipany-slots`;
  const key = family === 'vip' ? `ip daddr . meta l4proto . th dport . ${sel}` : `meta mark . ${sel}`;
  return `meta l4proto ${protocol} dnat ip addr . port to ${key} map @${family}-slots-${protocol}`;
}

/**
 * The whole table as one script that replaces whatever meshnet table exists, atomically:
 * `add table` (so the delete cannot fail on a fresh namespace), `delete table`, then the table.
 */
export function renderFullScript(model: NftModel): string {
  return runSync(fullScriptSteps(model));
}

/** renderFullScript as steps (see sliced.ts): 100,000 elements take a few hundred ms to write. */
export function* fullScriptSteps(model: NftModel): Steps<string> {
  const out: string[] = [`add table ${TABLE_REF}`, `delete table ${TABLE_REF}`, `table ${TABLE_REF} {`];
  for (const name of STATIC_MAP_NAMES) {
    out.push(`\tmap ${name} {`, `\t\t${STATIC_MAPS[name]}`);
    const elements = model.maps.get(name)!;
    if (elements.size > 0) {
      const keys = sortedKeys(elements);
      yield;
      const lines: string[] = [];
      for (let i = 0; i < keys.length; i++) {
        lines.push(`\t\t\t${elementText(keys[i]!, elements.get(keys[i]!)!)}`);
        if ((i & 1023) === 1023) yield;
      }
      out.push(`\t\telements = {`, lines.join(',\n'), `\t\t}`);
    }
    out.push(`\t}`);
  }
  for (const name of sortedKeys(model.sets)) out.push(`\tset ${name} { ${model.sets.get(name)} }`);
  for (const c of SKELETON_CHAINS) {
    out.push(`\tchain ${c.name} {`);
    if (c.header) out.push(`\t\t${c.header}`);
    for (const r of c.rules) out.push(`\t\t${r}`);
    out.push(`\t}`);
  }
  for (const name of sortedKeys(model.chains)) {
    out.push(`\tchain ${name} {`);
    for (const r of model.chains.get(name)!) out.push(`\t\t${r}`);
    out.push(`\t}`);
  }
  out.push('}');
  yield;
  return out.join('\n') + '\n';
}

/** Renders `table` as the full replacement script (validated; deterministic). */
export function renderLbTable(table: LbTable): string {
  return renderFullScript(renderModel(table));
}
