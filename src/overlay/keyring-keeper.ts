import type { Logger } from '../log/logger.js';
import type { KvStore } from '../store/kv-store.js';
import { KEYRING_KEY } from '../model/keys.js';
import type { NetworkRecord } from '../model/records.js';
import { isEncrypted } from './encryption-plan.js';
import { keyringDue, nextKeyringEvent, type Keyring } from './keyring.js';
import { ensureKeyring, parseKeyring } from './keyring-store.js';

/**
 * An agent's view of the keyring: what the store holds (from the agent's mirror), created or
 * rotated by this agent when it is due and some network is encrypted. A ring that fails
 * validation is reported once and the last valid one stays in force.
 */
export class KeyringKeeper {
  private last: Keyring | undefined;
  private lastText: string | undefined;
  private reported = '';

  constructor(
    private readonly store: KvStore,
    private readonly rotationMs: number,
    private readonly log: Logger,
  ) {}

  /** The ring in force at `now`, and when its meaning next changes by itself (null: no ring). */
  async current(raw: ReadonlyMap<string, string>, networks: readonly NetworkRecord[], connected: boolean, now: number): Promise<{ ring: Keyring | undefined; wakeAt: number | null }> {
    const text = raw.get(KEYRING_KEY);
    if (text !== this.lastText) {
      try {
        this.last = parseKeyring(text) ?? this.last;
        this.reported = '';
      } catch (err) {
        if (this.reported !== (err as Error).message) this.log.error({ event: 'encryption.keyring_invalid', error: (err as Error).message });
        this.reported = (err as Error).message;
      }
      this.lastText = text;
    }
    const wanted = networks.some((n) => isEncrypted(n.options));
    if (wanted && connected && keyringDue(this.last, now, this.rotationMs)) {
      try {
        const { ring, wrote } = await ensureKeyring(this.store, now, this.rotationMs);
        if (wrote) this.log.info({ event: this.last ? 'encryption.key_rotated' : 'encryption.keyring_created', tag: ring.keys[0]!.tag, keys: ring.keys.length, primaryAt: new Date(ring.keys[0]!.primaryAt).toISOString() });
        this.last = ring;
      } catch (err) {
        this.log.warn({ event: 'encryption.keyring_write_failed', error: (err as Error).message });
      }
    }
    return { ring: this.last, wakeAt: this.last && wanted ? nextKeyringEvent(this.last, now, this.rotationMs) : null };
  }
}
