import { createHash, hkdfSync } from 'node:crypto';
import { ESP_AEAD_KEY_BYTES } from '../sandbox/xfrm-codec.js';
import { primaryKey, type Keyring } from './keyring.js';
import { VXLAN_PORT } from './overlay-spec.js';

/**
 * The mark VXLAN datagrams of encrypted networks carry on their way out (Docker's value), set by
 * the host's mangle OUTPUT from the VNI (encryption-firewall.ts); the outbound policies match it,
 * so only those networks' datagrams go through ESP.
 */
export const ESP_MARK = 0xd0c4e3;
/** reqid of every meshnet SA and template: how meshnet tells its own XFRM objects from others'. */
export const ESP_REQID = 0x6d6e7431;
/** Priority of meshnet's outbound policies. */
export const ESP_POLICY_PRIORITY = 0x3e8;
/** Anti-replay window of each inbound SA, in packets. */
export const ESP_REPLAY_WINDOW = 64;

/** The network option that asks for encryption (`--opt encrypted`, Docker's). */
export const ENCRYPTED_OPTION = 'encrypted';

/** One direction between two underlay addresses under one key. */
export interface EspStatePlan {
  src: string;
  dst: string;
  spi: number;
  keyTag: number;
}

/** The outbound policy to one peer: its template pins the SA of the key nodes send with now. */
export interface EspPolicyPlan {
  src: string;
  dst: string;
  spi: number;
}

/** What this host's XFRM should hold for the encrypted overlays. */
export interface EncryptionPlan {
  local: string;
  /** VNIs whose VXLAN is encrypted (the firewall marks and guards them). */
  vnis: number[];
  states: EspStatePlan[];
  policies: EspPolicyPlan[];
  /**
   * Key tag -> secret, for the adapter to derive SA keys from. A Map, so the secrets never reach
   * a log line or a JSON comparison: the states' tags and SPIs say when anything changed.
   */
  keys: ReadonlyMap<number, string>;
}

/** What the encryption plan is made from. */
export interface EncryptionInput {
  /** This host's underlay address. */
  local: string;
  /** Underlay addresses of every peer that may carry an overlay (live ones and those in their grace). */
  peers: readonly string[];
  /** VNIs of the encrypted networks this host has an overlay on. */
  vnis: readonly number[];
  /** The cluster's ring; undefined until some agent has created it. */
  ring: Keyring | undefined;
  now: number;
}

/** True when a network asked for encryption (`--opt encrypted`, any value but "false"). */
export function isEncrypted(options: Readonly<Record<string, string>>): boolean {
  return ENCRYPTED_OPTION in options && options[ENCRYPTED_OPTION] !== 'false';
}

/**
 * The SPI of the SA from `src` to `dst` under key `tag`: the same on both ends without talking,
 * different per key and per direction, never in the reserved range 0-255.
 */
export function spiFor(tag: number, src: string, dst: string): number {
  const h = createHash('sha256').update(`meshnet-spi/${tag}/${src}>${dst}`).digest().readUInt32BE(0);
  return 0x100 + (h % (0xffffffff - 0x100));
}

/**
 * The AES-128-GCM key and salt (20 bytes) of the SA from `src` to `dst`: one per pair and
 * direction, derived from the ring's secret (HKDF-SHA256), so no two SAs share a GCM key.
 */
export function saKey(secret: string, src: string, dst: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'hex'), 'meshnet-esp', `${src}>${dst}`, ESP_AEAD_KEY_BYTES));
}

/**
 * Pure: the ESP states and policies this host needs, or null when it has no encrypted overlay
 * (then meshnet owns no XFRM object here). Every key of the ring has its states in both directions
 * with every peer (receiving works with any key a peer may still or already send with); the policy
 * to each peer pins the primary key's SA. Without a ring yet there are no states or policies and the
 * firewall's guard drops the encrypted networks' datagrams: never cleartext.
 */
export function desiredEncryption(input: EncryptionInput): EncryptionPlan | null {
  if (input.vnis.length === 0) return null;
  const peers = [...new Set(input.peers)].filter((p) => p !== input.local).sort();
  const vnis = [...new Set(input.vnis)].sort((a, b) => a - b);
  const plan: EncryptionPlan = { local: input.local, vnis, states: [], policies: [], keys: new Map() };
  if (!input.ring) return plan;
  const keys = new Map<number, string>();
  for (const key of input.ring.keys) {
    keys.set(key.tag, key.secret);
    for (const peer of peers) {
      plan.states.push({ src: input.local, dst: peer, spi: spiFor(key.tag, input.local, peer), keyTag: key.tag });
      plan.states.push({ src: peer, dst: input.local, spi: spiFor(key.tag, peer, input.local), keyTag: key.tag });
    }
  }
  const primary = primaryKey(input.ring, input.now);
  for (const peer of peers) plan.policies.push({ src: input.local, dst: peer, spi: spiFor(primary.tag, input.local, peer) });
  plan.keys = keys;
  return plan;
}

/** The UDP port the policies select (VXLAN's). */
export const ESP_SELECTED_PORT = VXLAN_PORT;
