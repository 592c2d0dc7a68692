import { describe, expect, it } from 'vitest';
import { KEYRING_SIZE, keyringDue, nextKeyringEvent, primaryKey, rotateKeyring, switchDelayMs } from './keyring.js';

const R = 60_000;
const seed = (tag: number) => ({ tag, secret: tag.toString(16).padStart(64, '0') });

describe('the keyring schedule', () => {
  it('is due without a ring, and again one rotation after the newest key', () => {
    expect(keyringDue(undefined, 0, R)).toBe(true);
    const ring = rotateKeyring(undefined, 1000, R, seed(1));
    expect(keyringDue(ring, 1000 + R - 1, R)).toBe(false);
    expect(keyringDue(ring, 1000 + R, R)).toBe(true);
  });

  it('makes the first key primary at once; a later key only after the switch delay, so every node receives with it first', () => {
    const first = rotateKeyring(undefined, 0, R, seed(1));
    expect(primaryKey(first, 0).tag).toBe(1);
    const second = rotateKeyring(first, R, R, seed(2));
    expect(second.keys.map((k) => k.tag)).toEqual([2, 1]);
    expect(primaryKey(second, R).tag).toBe(1);
    expect(primaryKey(second, R + switchDelayMs(R) - 1).tag).toBe(1);
    expect(primaryKey(second, R + switchDelayMs(R)).tag).toBe(2);
  });

  it('keeps three keys: new, current, previous; the oldest falls off at the next rotation', () => {
    let ring = rotateKeyring(undefined, 0, R, seed(1));
    for (let i = 2; i <= 5; i++) ring = rotateKeyring(ring, (i - 1) * R, R, seed(i));
    expect(ring.keys.map((k) => k.tag)).toEqual([5, 4, 3]);
    expect(ring.keys).toHaveLength(KEYRING_SIZE);
  });

  it('bounds the switch delay between 1 s and 30 s', () => {
    expect(switchDelayMs(2000)).toBe(1000);
    expect(switchDelayMs(8000)).toBe(2000);
    expect(switchDelayMs(12 * 3600 * 1000)).toBe(30_000);
  });

  it('wakes the agent when a pending key becomes primary, else when the next rotation is due', () => {
    const first = rotateKeyring(undefined, 0, R, seed(1));
    expect(nextKeyringEvent(first, 10, R)).toBe(R);
    const second = rotateKeyring(first, R, R, seed(2));
    expect(nextKeyringEvent(second, R + 1, R)).toBe(R + switchDelayMs(R));
    expect(nextKeyringEvent(second, R + switchDelayMs(R), R)).toBe(2 * R);
  });
});
