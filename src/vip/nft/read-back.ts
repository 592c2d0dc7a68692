import type { Frontend, L4Protocol, LbBackendTarget, LbTable, Scheduler, VirtualService } from '../lb-table.js';
import { NftReadError } from './errors.js';
import { SKELETON_CHAINS, STATIC_MAP_NAMES, TABLE_NAME } from './model.js';

/** What `nft -j list table ip meshnet` holds, reduced to what read-back needs. */
export interface ParsedKernelTable {
  table: LbTable;
  /** False when a skeleton map or chain is missing: the table must be rebuilt, not adopted. */
  skeletonComplete: boolean;
}

type Json = unknown;
interface Elem {
  key: Json;
  value: Json;
  comment?: string;
}

const SCHEDULERS = new Set<Scheduler>(['rr', 'wrr', 'lc', 'sh', 'mh', 'random']);
const WEIGHTED = new Set<Scheduler>(['wrr', 'random', 'sh', 'mh']);

function obj(x: Json): Record<string, Json> {
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, Json>) : {};
}

function parts(key: Json): Json[] {
  const c = obj(key)['concat'];
  return Array.isArray(c) ? c : [key];
}

function elements(map: Record<string, Json>): Elem[] {
  const raw = map['elem'];
  if (!Array.isArray(raw)) return [];
  return raw.map((pair: Json) => {
    if (!Array.isArray(pair)) return { key: pair, value: null };
    let key: Json = pair[0];
    let comment: string | undefined;
    const wrapped = obj(key)['elem'];
    if (wrapped) {
      key = obj(wrapped)['val'];
      const c = obj(wrapped)['comment'];
      if (typeof c === 'string') comment = c;
    }
    return { key, value: pair[1], comment };
  });
}

function parseComment(comment: string | undefined): { id: string; scheduler: Scheduler; persist?: number } | null {
  if (!comment) return null;
  const kv = new Map(comment.split(' ').map((p) => p.split('=') as [string, string]));
  const id = kv.get('id');
  const scheduler = kv.get('sched') as Scheduler | undefined;
  if (!id || !scheduler || !SCHEDULERS.has(scheduler)) return null;
  const persist = kv.has('persist') ? Number(kv.get('persist')) : undefined;
  return { id, scheduler, ...(persist !== undefined ? { persist } : {}) };
}

/** Parses the JSON of `nft -j list table ip meshnet` back into the table it implements. */
export function parseKernelTable(jsonText: string): ParsedKernelTable {
  let doc: Json;
  try {
    doc = JSON.parse(jsonText);
  } catch (err) {
    throw new NftReadError(`nft printed invalid JSON: ${(err as Error).message}`);
  }
  const items = obj(doc)['nftables'];
  if (!Array.isArray(items)) throw new NftReadError('no "nftables" array in the JSON output');
  const maps = new Map<string, Elem[]>();
  const chains = new Set<string>();
  for (const item of items) {
    const m = obj(obj(item)['map']);
    if (m['table'] === TABLE_NAME && typeof m['name'] === 'string') maps.set(m['name'], elements(m));
    const c = obj(obj(item)['chain']);
    if (c['table'] === TABLE_NAME && typeof c['name'] === 'string') chains.add(c['name']);
  }
  const skeletonComplete = STATIC_MAP_NAMES.every((n) => maps.has(n)) && SKELETON_CHAINS.every((c) => chains.has(c.name));
  const get = (n: string) => maps.get(n) ?? [];

  /** service key (joined frontend parts) -> backend "addr port" -> slots / recorded weight. */
  const slotCounts = new Map<string, Map<string, number>>();
  const recorded = new Map<string, Map<string, number>>();
  const add = (into: Map<string, Map<string, number>>, svc: string, be: string, n: number, sum: boolean) => {
    let m = into.get(svc);
    if (!m) into.set(svc, (m = new Map()));
    m.set(be, (sum ? (m.get(be) ?? 0) : 0) + n);
  };
  for (const e of [...get('vip-slots-tcp'), ...get('vip-slots-udp')]) {
    const k = parts(e.key);
    add(slotCounts, k.slice(0, 3).join(' '), parts(e.value).join(' '), 1, true);
  }
  for (const e of [...get('mark-slots-tcp'), ...get('mark-slots-udp')]) add(slotCounts, String(parts(e.key)[0]), parts(e.value).join(' '), 1, true);
  // Every-port VIPs: key VIP . proto . slot, value the address alone (the port stays the client's: 0).
  for (const e of get('vipany-slots')) add(slotCounts, parts(e.key).slice(0, 2).join(' '), `${String(e.value)} 0`, 1, true);
  for (const e of get('vipany-backend-weights')) {
    const k = parts(e.key);
    add(recorded, k.slice(0, 2).join(' '), `${String(k[2])} 0`, Number(e.value), false);
  }
  for (const e of get('vip-backend-weights')) {
    const k = parts(e.key);
    add(recorded, k.slice(0, 3).join(' '), k.slice(3).join(' '), Number(e.value), false);
  }
  for (const e of get('mark-backend-weights')) {
    const k = parts(e.key);
    add(recorded, String(k[0]), k.slice(1).join(' '), Number(e.value), false);
  }
  const snat = new Map<string, string>();
  for (const e of get('service-snat')) snat.set(parts(e.key).join(' '), String(e.value));
  for (const e of get('fwmark-snat')) snat.set(String(e.key), String(e.value));
  const markFrontends = new Map<string, { protocol: L4Protocol; port: number; address?: string }>();
  for (const e of get('fwmark-ports')) {
    const [proto, port] = parts(e.key);
    markFrontends.set(String(e.value), { protocol: proto as L4Protocol, port: Number(port) });
  }
  for (const e of get('fwmark-addr-ports')) {
    const [address, proto, port] = parts(e.key);
    markFrontends.set(String(e.value), { protocol: proto as L4Protocol, port: Number(port), address: String(address) });
  }

  const services: VirtualService[] = [];
  const build = (svcKey: string, frontend: Frontend, comment: string | undefined) => {
    const meta = parseComment(comment);
    if (!meta) return;
    const backends = new Map<string, LbBackendTarget>();
    for (const [be, count] of slotCounts.get(svcKey) ?? []) {
      const [address, port] = be.split(' ');
      backends.set(be, { address: address!, port: Number(port), weight: WEIGHTED.has(meta.scheduler) ? count : 1 });
    }
    for (const [be, weight] of recorded.get(svcKey) ?? []) {
      const [address, port] = be.split(' ');
      backends.set(be, { address: address!, port: Number(port), weight });
    }
    const svc: VirtualService = { id: meta.id, frontend, scheduler: meta.scheduler, backends: [...backends.values()] };
    if (meta.persist !== undefined) svc.persistenceSeconds = meta.persist;
    const s = snat.get(svcKey);
    if (s) svc.sourceNat = s;
    services.push(svc);
  };
  for (const e of get('service-ips')) {
    const [address, protocol, port] = parts(e.key);
    build(
      [address, protocol, port].join(' '),
      { kind: 'vip', address: String(address), protocol: protocol as L4Protocol, port: Number(port) },
      e.comment,
    );
  }
  for (const e of get('service-ips-any')) {
    const [address, protocol] = parts(e.key);
    build([address, protocol].join(' '), { kind: 'vip', address: String(address), protocol: protocol as L4Protocol, port: 0 }, e.comment);
  }
  for (const e of get('fwmark-services')) {
    const mark = Number(e.key);
    const f = markFrontends.get(String(mark));
    if (!f) continue;
    build(String(mark), { kind: 'fwmark', mark, protocol: f.protocol, port: f.port, ...(f.address ? { address: f.address } : {}) }, e.comment);
  }
  services.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { table: { services }, skeletonComplete };
}

/** The maps parseUdpBackends reads: small (UDP and published ports only) next to a whole table. */
export const UDP_BACKEND_MAPS = ['vip-slots-udp', 'vipany-slots', 'mark-slots-udp', 'fwmark-ports', 'fwmark-addr-ports'] as const;

/**
 * The UDP frontends and the backends their slots point to, from the JSON listings of
 * UDP_BACKEND_MAPS: what a rebuild over a table of unknown history needs to clear the conntrack
 * entries of UDP backends that left while no agent ran. Ids, schedulers and draining backends are
 * not there (ids are made up, every backend has weight 1).
 */
export function parseUdpBackends(listings: readonly string[]): LbTable {
  const maps = new Map<string, Elem[]>();
  for (const text of listings) {
    let doc: Json;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new NftReadError(`nft printed invalid JSON: ${(err as Error).message}`);
    }
    for (const item of (obj(doc)['nftables'] as Json[] | undefined) ?? []) {
      const m = obj(obj(item)['map']);
      if (m['table'] === TABLE_NAME && typeof m['name'] === 'string') maps.set(m['name'], elements(m));
    }
  }
  const byFrontend = new Map<string, VirtualService>();
  const add = (key: string, frontend: Frontend, address: string, port: number) => {
    let svc = byFrontend.get(key);
    if (!svc) byFrontend.set(key, (svc = { id: `udp-${byFrontend.size}`, frontend, scheduler: 'rr', backends: [] }));
    if (!svc.backends.some((b) => b.address === address && b.port === port)) svc.backends.push({ address, port, weight: 1 });
  };
  for (const e of maps.get('vip-slots-udp') ?? []) {
    const [address, , port] = parts(e.key);
    const [baddr, bport] = parts(e.value);
    add(`${address} ${port}`, { kind: 'vip', address: String(address), protocol: 'udp', port: Number(port) }, String(baddr), Number(bport));
  }
  for (const e of maps.get('vipany-slots') ?? []) {
    const [address, proto] = parts(e.key);
    if (proto === 'udp') add(`${address} 0`, { kind: 'vip', address: String(address), protocol: 'udp', port: 0 }, String(e.value), 0);
  }
  const markFrontends = new Map<number, { port: number; address?: string }>();
  for (const e of maps.get('fwmark-ports') ?? []) {
    const [proto, port] = parts(e.key);
    if (proto === 'udp') markFrontends.set(Number(e.value), { port: Number(port) });
  }
  for (const e of maps.get('fwmark-addr-ports') ?? []) {
    const [address, proto, port] = parts(e.key);
    if (proto === 'udp') markFrontends.set(Number(e.value), { port: Number(port), address: String(address) });
  }
  for (const e of maps.get('mark-slots-udp') ?? []) {
    const mark = Number(parts(e.key)[0]);
    const f = markFrontends.get(mark);
    if (!f) continue;
    const [baddr, bport] = parts(e.value);
    add(`mark ${mark}`, { kind: 'fwmark', mark, protocol: 'udp', port: f.port, ...(f.address ? { address: f.address } : {}) }, String(baddr), Number(bport));
  }
  return { services: [...byFrontend.values()] };
}
