import { hash } from 'node:crypto';
import type { VirtualService } from '../lb-table.js';
import type { NftModel } from './model.js';

/**
 * A digest of what meshnet's table holds, kept in the table itself (map `table-digest`) and
 * rewritten in the same transaction as every change, so a new agent can tell in one small read
 * whether the kernel already holds exactly the table it wants, instead of reading 100,000
 * elements back. It is a sum of per-part hashes (the layout and rendering code, each service's
 * definition), so a change costs O(changed): subtract the old part, add the new one. What the
 * kernel holds is a function of those parts, so equal digests mean equal tables (unless someone
 * edited the table by hand: the periodic reconcile rebuilds it).
 * Two independent 32-bit lanes of a 64-bit hash, summed modulo 2^32 each: plain numbers, no
 * BigInt, and each lane is one nft `mark`.
 */
export interface TableDigest {
  hi: number;
  lo: number;
}

/** The digest of nothing (the identity of `combine`). */
export const ZERO_DIGEST: TableDigest = Object.freeze({ hi: 0, lo: 0 });

/** The hash of one part of the table, as a digest term. MD5 because it is fast and no adversary chooses the parts. */
export function digestTerm(text: string): TableDigest {
  const h = hash('md5', text, 'buffer');
  return { hi: h.readUInt32BE(0), lo: h.readUInt32BE(4) };
}

/** `d` plus `sign` times `t`, lane by lane modulo 2^32. */
export function combine(d: TableDigest, t: TableDigest, sign: 1 | -1 = 1): TableDigest {
  return { hi: (d.hi + sign * t.hi) >>> 0, lo: (d.lo + sign * t.lo) >>> 0 };
}

/** True when two digests are equal. */
export function sameDigest(a: TableDigest | null, b: TableDigest | null): boolean {
  return !!a && !!b && a.hi === b.hi && a.lo === b.lo;
}

/** A 32-bit lane as nft lists a mark (fixed width, so keys compare equal to what nft prints). */
function lane(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** The digest as the key of its element in map `table-digest`. */
export function digestKey(d: TableDigest): string {
  return `${lane(d.hi)} . ${lane(d.lo)}`;
}

/**
 * The digest in `nft list map ip meshnet table-digest` output; null when the map holds none
 * (an empty map, or more than one element: not a table this code wrote).
 */
export function parseDigestListing(text: string): TableDigest | null {
  const m = /elements = \{\s*(0x[0-9a-f]{8}) \. (0x[0-9a-f]{8}) : 0x[0-9a-f]+\s*\}/.exec(text);
  if (!m) return null;
  return { hi: parseInt(m[1]!, 16), lo: parseInt(m[2]!, 16) };
}

/**
 * Everything rendering reads from a service, in a fixed order, backends sorted: equal keys render
 * equally, whatever the objects' property or backend order, and JSON keeps types apart ("80" is
 * not 80). A service's digest term is the hash of this key. Null when the service is too
 * malformed to key (validation then says why).
 */
export function definitionKey(svc: VirtualService): string | null {
  if (!svc || typeof svc !== 'object' || !svc.frontend || !Array.isArray(svc.backends)) return null;
  const f = svc.frontend;
  const backends = svc.backends.map((b) => JSON.stringify([b?.address, b?.port, b?.weight])).sort();
  return JSON.stringify([svc.id, f.kind, f.address, f.protocol, f.port, f.kind === 'fwmark' ? f.mark : null, svc.scheduler, svc.persistenceSeconds, svc.sourceNat, backends]);
}

/** Writes `digest` as the one element of map `table-digest` in `model` (value: the number of services). */
export function setDigestElement(model: NftModel, digest: TableDigest, services: number): void {
  const map = model.maps.get('table-digest')!;
  map.clear();
  map.set(digestKey(digest), { value: `0x${services.toString(16).padStart(8, '0')}` });
}
