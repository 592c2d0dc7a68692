import { describe, expect, it } from 'vitest';
import { desiredEncryption, isEncrypted, saKey, spiFor } from './encryption-plan.js';
import { nodeEncryption } from './encryption-target.js';
import { rotateKeyring, switchDelayMs, type Keyring } from './keyring.js';

const R = 60_000;
const seed = (tag: number) => ({ tag, secret: tag.toString(16).padStart(64, 'a') });
const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '192.0.2.3';
const ring1: Keyring = rotateKeyring(undefined, 0, R, seed(11));
const ring2: Keyring = rotateKeyring(ring1, R, R, seed(22));

describe('the encryption plan', () => {
  it('is null without an encrypted overlay: no XFRM object of meshnet at all', () => {
    expect(desiredEncryption({ local: A, peers: [B], vnis: [], ring: ring1, now: 0 })).toBeNull();
    const plain = nodeEncryption({ local: A, overlays: [{ vni: 4096, options: {} }], peers: [B], ring: ring1, now: 0 });
    expect(plain.plan).toBeNull();
    // With a ring (the cluster encrypted once) the empty rule set removes what a gone network left.
    expect(plain.firewall!.chains).toEqual([]);
    expect(plain.firewall!.builtins).toEqual([]);
    // A cluster that never encrypted keeps its host firewall exactly as before.
    expect(nodeEncryption({ local: A, overlays: [{ vni: 4096, options: {} }], peers: [B], ring: undefined, now: 0 }).firewall).toBeNull();
  });

  it('keys nothing over a v6 underlay (its encrypted overlays refuse to build), and no SA toward a v6 peer from a v4 node', () => {
    const v6 = nodeEncryption({ local: '2001:db8::1', overlays: [{ vni: 4097, options: { encrypted: '' } }], peers: ['2001:db8::2'], ring: ring1, now: 0 });
    expect(v6.plan).toBeNull();
    expect(v6.firewall!.chains).toEqual([]);
    const mixed = nodeEncryption({ local: A, overlays: [{ vni: 4097, options: { encrypted: '' } }], peers: [B, '2001:db8::2'], ring: ring1, now: 0 });
    expect(new Set(mixed.plan!.states.flatMap((s) => [s.src, s.dst]))).toEqual(new Set([A, B]));
  });

  it('reads --opt encrypted as Docker does', () => {
    expect([isEncrypted({ encrypted: '' }), isEncrypted({ encrypted: 'true' }), isEncrypted({ encrypted: 'false' }), isEncrypted({})]).toEqual([true, true, false, false]);
  });

  it('has states in both directions with every peer, and both ends agree on SPIs and keys without talking', () => {
    const onA = desiredEncryption({ local: A, peers: [B, C, A], vnis: [4097], ring: ring1, now: 0 })!;
    const onB = desiredEncryption({ local: B, peers: [A, C], vnis: [4097], ring: ring1, now: 0 })!;
    expect(onA.states).toHaveLength(4);
    const aToB = onA.states.find((s) => s.src === A && s.dst === B)!;
    const aToBonB = onB.states.find((s) => s.src === A && s.dst === B)!;
    expect(aToBonB).toEqual(aToB);
    expect(onA.states.find((s) => s.src === B && s.dst === A)).toEqual(onB.states.find((s) => s.src === B && s.dst === A));
    expect(saKey(onA.keys.get(aToB.keyTag)!, A, B)).toEqual(saKey(onB.keys.get(aToBonB.keyTag)!, A, B));
    // Each direction and pair has its own SPI and its own GCM key.
    expect(spiFor(11, A, B)).not.toBe(spiFor(11, B, A));
    expect(saKey(seed(11).secret, A, B)).not.toEqual(saKey(seed(11).secret, B, A));
    expect(onA.states.every((s) => s.spi >= 0x100 && s.spi <= 0xffffffff)).toBe(true);
    expect(onA.policies).toEqual([{ src: A, dst: B, spi: spiFor(11, A, B) }, { src: A, dst: C, spi: spiFor(11, A, C) }]);
  });

  it('never puts a secret into its JSON (logs and the applied cache see tags and SPIs only)', () => {
    const plan = desiredEncryption({ local: A, peers: [B], vnis: [4097], ring: ring1, now: 0 })!;
    expect(JSON.stringify(plan)).not.toContain(seed(11).secret);
  });

  it('during a rotation receives with every key but sends with the old one until the switch', () => {
    const before = desiredEncryption({ local: A, peers: [B], vnis: [4097], ring: ring2, now: R })!;
    expect(new Set(before.states.map((s) => s.keyTag))).toEqual(new Set([11, 22]));
    expect(before.policies).toEqual([{ src: A, dst: B, spi: spiFor(11, A, B) }]);
    const after = desiredEncryption({ local: A, peers: [B], vnis: [4097], ring: ring2, now: R + switchDelayMs(R) })!;
    expect(after.states).toEqual(before.states);
    expect(after.policies).toEqual([{ src: A, dst: B, spi: spiFor(22, A, B) }]);
  });

  it('drops a peer that left: its states and policy go', () => {
    const plan = desiredEncryption({ local: A, peers: [B], vnis: [4097], ring: ring2, now: R })!;
    expect(plan.states.some((s) => s.src === C || s.dst === C)).toBe(false);
    expect(plan.policies.map((p) => p.dst)).toEqual([B]);
  });

  it('without a ring yet: guarded VNIs, no states or policies (the firewall drops rather than leak)', () => {
    const e = nodeEncryption({ local: A, overlays: [{ vni: 4097, options: { encrypted: '' } }, { vni: 4096, options: {} }], peers: [B], ring: undefined, now: 0 });
    expect(e.plan).toMatchObject({ vnis: [4097], states: [], policies: [] });
    expect(e.firewall!.chains.find((c) => c.name === 'MESHNET-ESP-MARK')!.rules).toEqual(['-m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x8=0x1001" -j MARK --set-xmark 0xd0c4e3/0xffffffff']);
  });
});
