/**
 * Pure translation of an LbTable into the IPVS objects it needs, and the ordered list of
 * kernel operations that turns what the kernel holds into that.
 */
import { isIPv4 } from 'node:net';
import type { LbTable, Scheduler, VirtualService } from '../lb-table.js';
import { canonicalAddress, SVC_F_PERSISTENT, type IpvsDest, type IpvsDestKey, type IpvsFamily, type IpvsService, type IpvsServiceKey } from './codec.js';
import { everyPortMarks, type EveryPortMarks } from './every-port-marks.js';
import { IpvsTableError } from './ipvs-table-error.js';

/** A service with its destinations, as plain data (desired or read back). */
export interface IpvsServiceState {
  service: IpvsService;
  dests: IpvsDest[];
}

export interface IpvsState {
  services: IpvsServiceState[];
}

/** One kernel operation; planIpvs returns them in the order they must run. */
export type IpvsOp =
  | { op: 'addService'; service: IpvsService }
  | { op: 'updateService'; service: IpvsService }
  | { op: 'addDest'; service: IpvsServiceKey; dest: IpvsDest }
  | { op: 'updateDest'; service: IpvsServiceKey; dest: IpvsDest }
  | { op: 'deleteDest'; service: IpvsServiceKey; dest: IpvsDestKey }
  | { op: 'deleteService'; key: IpvsServiceKey };

export { IpvsTableError } from './ipvs-table-error.js';
export { EVERY_PORT_MARK_BASE, everyPortMark, everyPortMarks, type EveryPortMarks } from './every-port-marks.js';

const IPVS_SCHEDULERS: Record<Scheduler, string> = {
  rr: 'rr',
  wrr: 'wrr',
  lc: 'lc',
  sh: 'sh',
  mh: 'mh',
  // IPVS has no random scheduler; round robin gives the same even spread.
  random: 'rr',
};

/** Address family of an IP literal. */
export function familyOf(address: string): IpvsFamily {
  return address.includes(':') ? 'inet6' : 'inet';
}

/** Stable text identity of a service key, for maps and logs. */
export function serviceKeyId(k: IpvsServiceKey): string {
  return k.kind === 'fwmark' ? `fwm/${k.family}/${k.fwmark}` : `${k.protocol}/${k.family}/${k.address}/${k.port}`;
}

function destKeyId(d: IpvsDestKey): string {
  return `${d.family}/${d.address}/${d.port}`;
}

/** The address family of a table entry's IPVS service: its frontend's, else its first backend's (v4 when it has none). */
export function serviceFamily(vs: VirtualService): IpvsFamily {
  const fe = vs.frontend;
  if (fe.kind === 'vip') return familyOf(fe.address);
  if (fe.address) return familyOf(fe.address);
  const first = vs.backends[0];
  return first ? familyOf(first.address) : 'inet';
}

/** True for a VIP frontend that balances every port (port 0). */
export function isEveryPortVip(vs: VirtualService): boolean {
  return vs.frontend.kind === 'vip' && vs.frontend.port === 0;
}

/** The IPVS service key for a table entry (`marks`: the every-port marks of the table it is in). */
export function ipvsKeyOf(vs: VirtualService, marks: EveryPortMarks = everyPortMarks({ services: [vs] })): IpvsServiceKey {
  const family = serviceFamily(vs);
  const fe = vs.frontend;
  if (fe.kind === 'fwmark') return { kind: 'fwmark', family, fwmark: fe.mark };
  // IPVS matches a VIP on one port; every port is a firewall-mark service fed by a MARK rule on the VIP.
  if (fe.port === 0) return { kind: 'fwmark', family, fwmark: marks(fe.address, fe.protocol) };
  return { kind: 'vip', family, protocol: fe.protocol, address: canonicalAddress(family, fe.address), port: fe.port };
}

const ID_RE = /^[a-z0-9_-]{1,48}$/;

function checkPort(p: number, what: string, allowZero: boolean): void {
  if (!Number.isInteger(p) || p < (allowZero ? 0 : 1) || p > 65535) throw new IpvsTableError(`${what}: port ${p} is outside ${allowZero ? 0 : 1}-65535`);
}

/** Reject a table IPVS cannot program, naming the service and field at fault. */
export function validateLbTable(table: LbTable): void {
  if (!table || !Array.isArray(table.services)) throw new IpvsTableError('the load-balancing table must have a services array');
  const ids = new Set<string>();
  const keys = new Map<string, string>();
  const marks = new Map<string, string>();
  const markOf = everyPortMarks(table);
  for (const vs of table.services) {
    if (!ID_RE.test(vs.id)) throw new IpvsTableError(`service id "${vs.id}" must be 1-48 characters of [a-z0-9_-]`);
    if (ids.has(vs.id)) throw new IpvsTableError(`service id "${vs.id}" appears twice`);
    ids.add(vs.id);
    const fe = vs.frontend;
    if (fe.protocol !== 'tcp' && fe.protocol !== 'udp') throw new IpvsTableError(`service ${vs.id}: protocol must be tcp or udp`);
    if (!(vs.scheduler in IPVS_SCHEDULERS)) throw new IpvsTableError(`service ${vs.id}: scheduler "${vs.scheduler}" is not one of ${Object.keys(IPVS_SCHEDULERS).join(', ')}`);
    if (fe.kind === 'fwmark') {
      if (!Number.isInteger(fe.mark) || fe.mark < 1 || fe.mark > 0xffffffff) throw new IpvsTableError(`service ${vs.id}: fwmark ${fe.mark} must be 1-4294967295`);
      checkPort(fe.port, `service ${vs.id}`, false);
    } else {
      checkPort(fe.port, `service ${vs.id}`, true);
      if (fe.port === 0 && vs.sourceNat !== undefined) throw new IpvsTableError(`service ${vs.id}: an every-port VIP (port 0) cannot have sourceNat`);
    }
    if (vs.sourceNat !== undefined && (serviceFamily(vs) !== 'inet' || !isIPv4(vs.sourceNat))) {
      // The SNAT rules are iptables (v4) rules; v6 published ports keep their SNAT in ip6 meshnet6 (DualStackLb).
      throw new IpvsTableError(`service ${vs.id}: sourceNat ${vs.sourceNat} must be an IPv4 address on a v4 service (v6 published ports belong in ip6 meshnet6)`);
    }
    let key: IpvsServiceKey;
    try {
      key = ipvsKeyOf(vs, markOf);
    } catch (e) {
      throw new IpvsTableError(`service ${vs.id}: ${(e as Error).message}`);
    }
    if (key.kind === 'fwmark') {
      // One mark feeds one IPVS service of a family: two table entries on one mark would merge their backends.
      const other = marks.get(`${key.family}/${key.fwmark}`);
      if (other !== undefined) throw new IpvsTableError(`services ${other} and ${vs.id} share fwmark ${key.fwmark}`);
      marks.set(`${key.family}/${key.fwmark}`, vs.id);
    }
    const kid = serviceKeyId(key);
    const prev = keys.get(kid);
    if (prev !== undefined) throw new IpvsTableError(`services ${prev} and ${vs.id} both map to IPVS service ${kid}`);
    keys.set(kid, vs.id);
    if (vs.persistenceSeconds !== undefined && (!Number.isInteger(vs.persistenceSeconds) || vs.persistenceSeconds < 0 || vs.persistenceSeconds > 0x7fffffff / 1000)) {
      throw new IpvsTableError(`service ${vs.id}: persistenceSeconds ${vs.persistenceSeconds} must be a whole number of seconds, 0-2147483`);
    }
    if (!Array.isArray(vs.backends)) throw new IpvsTableError(`service ${vs.id}: backends must be an array`);
    const seen = new Set<string>();
    for (const b of vs.backends) {
      checkPort(b.port, `service ${vs.id} backend ${b.address}`, true);
      if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 65535) throw new IpvsTableError(`service ${vs.id} backend ${b.address}: weight ${b.weight} must be 0-65535`);
      if (familyOf(b.address) !== key.family) throw new IpvsTableError(`service ${vs.id}: backend ${b.address} is not the same address family as the service`);
      let canon: string;
      try {
        canon = canonicalAddress(key.family, b.address);
      } catch (e) {
        throw new IpvsTableError(`service ${vs.id}: ${(e as Error).message}`);
      }
      const port = destPort(vs, b.port);
      const id = `${canon}/${port}`;
      if (seen.has(id)) throw new IpvsTableError(`service ${vs.id}: backend ${b.address}:${port} appears twice`);
      seen.add(id);
    }
  }
}

/** Backend port 0 keeps the frontend port; on fwmark services 0 passes through (the kernel keeps the packet's port). */
function destPort(vs: VirtualService, port: number): number {
  return port === 0 && vs.frontend.kind === 'vip' ? vs.frontend.port : port;
}

/** The IPVS objects a table needs (validate first). Forwarding is always masq (NAT). */
export function ipvsStateFromTable(table: LbTable): IpvsState {
  const marks = everyPortMarks(table);
  return {
    services: table.services.map((vs) => {
      const key = ipvsKeyOf(vs, marks);
      const persistent = (vs.persistenceSeconds ?? 0) > 0;
      const service: IpvsService = {
        key,
        scheduler: IPVS_SCHEDULERS[vs.scheduler],
        flags: persistent ? SVC_F_PERSISTENT : 0,
        timeout: persistent ? (vs.persistenceSeconds ?? 0) : 0,
        netmaskPrefix: key.family === 'inet' ? 32 : 128,
      };
      const dests = vs.backends.map<IpvsDest>((b) => ({
        family: key.family,
        address: canonicalAddress(key.family, b.address),
        port: destPort(vs, b.port),
        forward: 'masq',
        weight: b.weight,
        upperThreshold: 0,
        lowerThreshold: 0,
      }));
      return { service, dests };
    }),
  };
}

function sameService(a: IpvsService, b: IpvsService): boolean {
  return a.scheduler === b.scheduler && a.flags === b.flags && a.timeout === b.timeout && a.netmaskPrefix === b.netmaskPrefix && (a.peName ?? '') === (b.peName ?? '');
}

function sameDest(a: IpvsDest, b: IpvsDest): boolean {
  return a.weight === b.weight && a.forward === b.forward && a.upperThreshold === b.upperThreshold && a.lowerThreshold === b.lowerThreshold;
}

/**
 * Operations turning `current` into `desired`, in a safe order: new services first (so
 * traffic has somewhere to go), then per service destination adds, updates (weight 0 drains)
 * and removals, and deleted services last.
 */
export function planIpvs(current: IpvsState, desired: IpvsState): IpvsOp[] {
  const cur = new Map(current.services.map((s) => [serviceKeyId(s.service.key), s]));
  const ops: IpvsOp[] = [];
  const destOps: IpvsOp[] = [];
  const wanted = new Set<string>();
  for (const want of desired.services) {
    const kid = serviceKeyId(want.service.key);
    wanted.add(kid);
    const have = cur.get(kid);
    if (!have) ops.push({ op: 'addService', service: want.service });
    else if (!sameService(have.service, want.service)) ops.push({ op: 'updateService', service: want.service });
    const haveDests = new Map((have?.dests ?? []).map((d) => [destKeyId(d), d]));
    const wantIds = new Set<string>();
    for (const d of want.dests) {
      const did = destKeyId(d);
      wantIds.add(did);
      const h = haveDests.get(did);
      if (!h) destOps.push({ op: 'addDest', service: want.service.key, dest: d });
      else if (!sameDest(h, d)) destOps.push({ op: 'updateDest', service: want.service.key, dest: d });
    }
    for (const [did, h] of haveDests) {
      if (!wantIds.has(did)) destOps.push({ op: 'deleteDest', service: want.service.key, dest: { family: h.family, address: h.address, port: h.port } });
    }
  }
  const removed: IpvsOp[] = [];
  for (const [kid, have] of cur) if (!wanted.has(kid)) removed.push({ op: 'deleteService', key: have.service.key });
  return [...ops, ...destOps, ...removed];
}
