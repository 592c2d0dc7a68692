import { randomBytes } from 'node:crypto';
import type { KvStore } from '../store/kv-store.js';
import { KEYRING_KEY } from '../model/keys.js';
import { keyringDue, KeyringSchema, rotateKeyring, type Keyring } from './keyring.js';

/** The stored keyring is not valid: the agents keep the ring they last read. */
export class KeyringInvalidError extends Error {
  readonly code = 'KEYRING_INVALID';
  constructor(detail: string) {
    super(`the stored keyring at ${KEYRING_KEY} is invalid (${detail}): delete that key and an agent creates a new ring (encrypted networks pause until every node has it)`);
    this.name = 'KeyringInvalidError';
  }
}

/** The ring from its stored text; undefined when none is stored. */
export function parseKeyring(text: string | undefined): Keyring | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KeyringInvalidError('not JSON');
  }
  const parsed = KeyringSchema.safeParse(value);
  if (!parsed.success) throw new KeyringInvalidError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data;
}

/**
 * Creates the ring when there is none, or adds a key when its newest is one rotation old, by
 * compare-and-swap: of agents that find it due at once, one writes and the others read its ring.
 * The keys travel in the store: protected in transit by the store's TLS (a non-loopback etcd is used
 * only over TLS with client certificates) and at rest by the embedded store's 0600 file. Not encrypted
 * again here: whoever can read the store can already run commands as root on every host, and a key
 * to unwrap them would have to sit beside them. Returns the ring in force and whether this call wrote it.
 */
export async function ensureKeyring(store: KvStore, now: number, rotationMs: number): Promise<{ ring: Keyring; wrote: boolean }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const kv = await store.get(KEYRING_KEY);
    const ring = parseKeyring(kv?.value);
    if (ring && !keyringDue(ring, now, rotationMs)) return { ring, wrote: false };
    const next = rotateKeyring(ring, now, rotationMs, { tag: randomBytes(4).readUInt32BE(0) || 1, secret: randomBytes(32).toString('hex') });
    const res = await store.txn({
      compare: [kv ? { key: KEYRING_KEY, modRevision: kv.modRevision } : { key: KEYRING_KEY, absent: true }],
      success: [{ type: 'put', key: KEYRING_KEY, value: JSON.stringify(next) }],
    });
    if (res.succeeded) return { ring: next, wrote: true };
  }
  throw new Error(`could not write the keyring at ${KEYRING_KEY}: other agents keep changing it; it is retried on the next pass`);
}
