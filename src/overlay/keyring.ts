import { z } from 'zod';

// The cluster's keyring for encrypted overlays, as Docker keeps it: at most three keys (the newest,
// the current and the previous). Every agent reads the same stored ring and derives from it, by time
// alone, which keys it receives with and which one it sends with, so nodes agree without talking:
// a key is installed for receiving as soon as it is stored, becomes the sending key at its
// `primaryAt` (late enough for every agent to have installed it), and is removed when it falls off
// the ring one rotation later (the grace for packets in flight).

/** How many keys the ring holds. */
export const KEYRING_SIZE = 3;
/** Docker's rotation period: 12 h. */
export const DEFAULT_KEY_ROTATION_SECONDS = 12 * 3600;

/** One key of the ring. */
export const EncryptionKeySchema = z.looseObject({
  /** Public id of the key: SPIs are derived from it. */
  tag: z.number().int().min(1).max(0xffffffff),
  /** 32 random bytes, hex: the per-pair ESP keys are derived from it. */
  secret: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits'),
  /** Milliseconds since the epoch. */
  createdAt: z.number().int().min(0),
  /** When nodes start sending with it. */
  primaryAt: z.number().int().min(0),
});
/** One key of the ring. */
export type EncryptionKey = z.infer<typeof EncryptionKeySchema>;

/** The stored ring, newest key first. */
export const KeyringSchema = z.looseObject({
  keys: z.array(EncryptionKeySchema).min(1).max(KEYRING_SIZE),
});
/** The cluster's keyring. */
export type Keyring = z.infer<typeof KeyringSchema>;

/** Fresh random material for a new key (the adapter draws it; the schedule stays pure). */
export interface KeySeed {
  tag: number;
  secret: string;
}

/**
 * How long a new key waits before nodes send with it: a quarter of the period, between 1 s and
 * 30 s, so every agent's watch and pass have installed its receiving states first.
 */
export function switchDelayMs(rotationMs: number): number {
  return Math.min(30_000, Math.max(1000, Math.floor(rotationMs / 4)));
}

/** True when the ring is missing or its newest key is one rotation old: a new key is due. */
export function keyringDue(ring: Keyring | undefined, now: number, rotationMs: number): boolean {
  const newest = ring?.keys[0];
  return newest === undefined || now - newest.createdAt >= rotationMs;
}

/**
 * The ring with a new key in front (the oldest beyond three falls off). The very first key is
 * primary at once: there is no older key to send with meanwhile.
 */
export function rotateKeyring(ring: Keyring | undefined, now: number, rotationMs: number, seed: KeySeed): Keyring {
  const keys = (ring?.keys ?? []).filter((k) => k.tag !== seed.tag);
  const primaryAt = keys.length === 0 ? now : now + switchDelayMs(rotationMs);
  return { keys: [{ tag: seed.tag, secret: seed.secret, createdAt: now, primaryAt }, ...keys].slice(0, KEYRING_SIZE) };
}

/** The key nodes send with at `now`: the newest whose primaryAt has come (else the oldest). */
export function primaryKey(ring: Keyring, now: number): EncryptionKey {
  return ring.keys.find((k) => k.primaryAt <= now) ?? ring.keys[ring.keys.length - 1]!;
}

/** When the ring's meaning next changes by itself: a pending key becomes primary, or a rotation is due. */
export function nextKeyringEvent(ring: Keyring, now: number, rotationMs: number): number {
  const pending = ring.keys.filter((k) => k.primaryAt > now).map((k) => k.primaryAt);
  return Math.min(ring.keys[0]!.createdAt + rotationMs, ...pending);
}
