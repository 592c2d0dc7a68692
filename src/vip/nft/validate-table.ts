import { isIPv4 } from 'node:net';
import type { LbTable, VirtualService } from '../lb-table.js';
import { InvalidLbTableError } from './errors.js';

const ID = /^[a-z0-9_-]{1,48}$/;
const SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'sh', 'mh', 'random']);
const PROTOCOLS = new Set(['tcp', 'udp']);

function checkPort(what: string, port: unknown, allowZero: boolean): void {
  if (!Number.isInteger(port) || (port as number) < (allowZero ? 0 : 1) || (port as number) > 65535) {
    throw new InvalidLbTableError(`${what} ${String(port)} must be an integer ${allowZero ? 0 : 1}-65535`);
  }
}

function checkAddress(what: string, address: unknown): void {
  if (typeof address !== 'string' || !isIPv4(address)) {
    throw new InvalidLbTableError(`${what} ${JSON.stringify(address)} is not an IPv4 address (the nftables backend balances IPv4 only)`);
  }
}

/** Throws InvalidLbTableError unless one service can be rendered (uniqueness across services is checked separately). */
export function validateService(svc: VirtualService): void {
  if (typeof svc.id !== 'string' || !ID.test(svc.id)) {
    throw new InvalidLbTableError(`service id ${JSON.stringify(svc.id)} must be 1-48 characters of [a-z0-9_-]`);
  }
  const where = `service ${svc.id}:`;
  if (!SCHEDULERS.has(svc.scheduler)) throw new InvalidLbTableError(`${where} unknown scheduler ${JSON.stringify(svc.scheduler)}`);
  const f = svc.frontend;
  if (!PROTOCOLS.has(f.protocol)) throw new InvalidLbTableError(`${where} protocol must be tcp or udp`);
  checkPort(`${where} frontend port`, f.port, f.kind === 'vip');
  if (f.kind === 'vip') checkAddress(`${where} VIP`, f.address);
  else if (f.kind === 'fwmark') {
    if (!Number.isInteger(f.mark) || f.mark < 1 || f.mark > 0xffffffff) {
      throw new InvalidLbTableError(`${where} fwmark ${String(f.mark)} must be an integer 1-0xffffffff`);
    }
    if (f.address !== undefined) checkAddress(`${where} fwmark address`, f.address);
  } else throw new InvalidLbTableError(`${where} frontend kind must be vip or fwmark`);
  if (f.kind === 'vip' && f.port === 0) {
    if (svc.sourceNat !== undefined) throw new InvalidLbTableError(`${where} an every-port VIP (port 0) cannot have sourceNat`);
    for (const b of svc.backends ?? []) {
      if (b.port !== 0) throw new InvalidLbTableError(`${where} an every-port VIP (port 0) keeps the client's port: backend ${b.address} must have port 0, not ${b.port}`);
    }
  }
  if (svc.persistenceSeconds !== undefined) {
    if (!Number.isInteger(svc.persistenceSeconds) || svc.persistenceSeconds < 1 || svc.persistenceSeconds > 86400 * 7) {
      throw new InvalidLbTableError(`${where} persistenceSeconds must be an integer 1-604800`);
    }
  }
  if (svc.sourceNat !== undefined) checkAddress(`${where} sourceNat`, svc.sourceNat);
  if (!Array.isArray(svc.backends)) throw new InvalidLbTableError(`${where} backends must be a list`);
  const seen = new Set<string>();
  for (const b of svc.backends) {
    checkAddress(`${where} backend`, b.address);
    checkPort(`${where} backend ${b.address} port`, b.port, true);
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 65535) {
      throw new InvalidLbTableError(`${where} backend ${b.address}:${b.port} weight must be an integer 0-65535`);
    }
    const key = `${b.address}:${b.port}`;
    if (seen.has(key)) throw new InvalidLbTableError(`${where} backend ${key} is listed twice`);
    seen.add(key);
  }
}

/** Throws InvalidLbTableError unless every service in `table` can be rendered to nftables. */
export function validateLbTable(table: LbTable): void {
  if (!table || !Array.isArray(table.services)) throw new InvalidLbTableError('services must be a list');
  for (const svc of table.services) validateService(svc);
  validateUniqueness(table.services);
}

/** Throws InvalidLbTableError when two services share an id, a frontend or a fwmark. */
export function validateUniqueness(services: readonly VirtualService[]): void {
  const ids = new Set<string>();
  const frontends = new Map<string, string>();
  const marks = new Map<number, string>();
  for (const svc of services) {
    if (ids.has(svc.id)) throw new InvalidLbTableError(`service id ${svc.id} is used twice`);
    ids.add(svc.id);
    const f = svc.frontend;
    const key = frontendKey(svc);
    const other = frontends.get(key);
    if (other) throw new InvalidLbTableError(`services ${other} and ${svc.id} have the same frontend ${key}`);
    frontends.set(key, svc.id);
    if (f.kind === 'fwmark') {
      const m = marks.get(f.mark);
      if (m) throw new InvalidLbTableError(`services ${m} and ${svc.id} share fwmark ${f.mark}: give each fwmark frontend its own mark`);
      marks.set(f.mark, svc.id);
    }
  }
}

/** The identity two services may not share: VIP . proto . port, or the published address . proto . port. */
export function frontendKey(svc: VirtualService): string {
  const f = svc.frontend;
  return f.kind === 'vip' ? `${f.address} ${f.protocol} ${f.port}` : `mark ${f.address ?? '*'} ${f.protocol} ${f.port}`;
}
