import { createHash } from 'node:crypto';

// Hashes of strings that every agent must compute alike (placement's rendezvous scores, the resync's
// rounds), asked for again on every pass with the same strings. sha256 was a good part of those passes'
// CPU, so answers are kept; a full cache starts over, which costs one hash per string still in use.

const LIMIT = 200_000;
const words32 = new Map<string, number>();
const words64 = new Map<string, bigint>();

function kept<T>(cache: Map<string, T>, text: string, hash: (digest: Buffer) => T): T {
  let value = cache.get(text);
  if (value === undefined) {
    if (cache.size >= LIMIT) cache.clear();
    value = hash(createHash('sha256').update(text).digest());
    cache.set(text, value);
  }
  return value;
}

/** The first 32 bits of sha256(text), big-endian. */
export function stableHash32(text: string): number {
  return kept(words32, text, (d) => d.readUInt32BE(0));
}

/** The first 64 bits of sha256(text), big-endian. */
export function stableHash64(text: string): bigint {
  return kept(words64, text, (d) => d.readBigUInt64BE(0));
}
