import { describe, expect, it } from 'vitest';
import type { XfrmPolicyView, XfrmSaView } from '../sandbox/xfrm-codec.js';
import { planXfrm, type XfrmOp } from './encryption-diff.js';
import { desiredEncryption, ESP_MARK, ESP_POLICY_PRIORITY, ESP_REQID, saKey, type EncryptionPlan } from './encryption-plan.js';
import { rotateKeyring, switchDelayMs } from './keyring.js';

const R = 60_000;
const seed = (tag: number) => ({ tag, secret: tag.toString(16).padStart(64, 'b') });
const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '192.0.2.3';
const ring1 = rotateKeyring(undefined, 0, R, seed(11));
const ring2 = rotateKeyring(ring1, R, R, seed(22));

/** What the kernel would hold after `plan` was applied. */
function kernelOf(plan: EncryptionPlan): { states: XfrmSaView[]; policies: XfrmPolicyView[] } {
  return {
    states: plan.states.map((s) => ({ src: s.src, dst: s.dst, spi: s.spi, reqid: ESP_REQID, proto: 50, mode: 0, aead: { name: 'rfc4106(gcm(aes))', icvBits: 128, key: saKey(plan.keys.get(s.keyTag)!, s.src, s.dst) } })),
    policies: plan.policies.map((p) => ({ src: p.src, dst: p.dst, srcPrefix: 32, dstPrefix: 32, proto: 17, dport: 4789, dir: 1, priority: ESP_POLICY_PRIORITY, mark: { value: ESP_MARK, mask: 0xffffffff }, tmpl: { src: p.src, dst: p.dst, spi: p.spi, reqid: ESP_REQID, proto: 50, mode: 0 } })),
  };
}
const kinds = (ops: XfrmOp[]) => ops.map((o) => o.op);

describe('planXfrm', () => {
  const v1 = desiredEncryption({ local: A, peers: [B, C], vnis: [4097], ring: ring1, now: 0 })!;

  it('installs states before the policies that pin them', () => {
    expect(kinds(planXfrm({ states: [], policies: [] }, v1))).toEqual(['putState', 'putState', 'putState', 'putState', 'putPolicy', 'putPolicy']);
  });

  it('adopts what a previous agent applied: nothing to do, so a restart drops no packet', () => {
    expect(planXfrm(kernelOf(v1), v1)).toEqual([]);
  });

  it('rotates in order: the new key receives first, then the outbound SPI switches, and the old key goes only when it leaves the ring', () => {
    const added = desiredEncryption({ local: A, peers: [B, C], vnis: [4097], ring: ring2, now: R })!;
    expect(kinds(planXfrm(kernelOf(v1), added))).toEqual(['putState', 'putState', 'putState', 'putState']);
    const switched = desiredEncryption({ local: A, peers: [B, C], vnis: [4097], ring: ring2, now: R + switchDelayMs(R) })!;
    const ops = planXfrm(kernelOf(added), switched);
    expect(kinds(ops)).toEqual(['putPolicy', 'putPolicy']);
    let ring = ring2;
    for (const t of [33, 44]) ring = rotateKeyring(ring, R * (t / 11 - 1), R, seed(t));
    const dropped = desiredEncryption({ local: A, peers: [B, C], vnis: [4097], ring, now: 10 * R })!;
    const removal = planXfrm(kernelOf(desiredEncryption({ local: A, peers: [B, C], vnis: [4097], ring: rotateKeyring(ring2, 2 * R, R, seed(33)), now: 10 * R })!), dropped);
    expect(removal.filter((o) => o.op === 'deleteState')).toHaveLength(4);
    // Deletions come last: nothing is put after the first state is taken away.
    const firstDelete = removal.findIndex((o) => o.op === 'deleteState');
    expect(removal.slice(firstDelete).every((o) => o.op === 'deleteState')).toBe(true);
  });

  it('removes a departed peer: its policy first, then its states', () => {
    const onlyB = desiredEncryption({ local: A, peers: [B], vnis: [4097], ring: ring1, now: 0 })!;
    const ops = planXfrm(kernelOf(v1), onlyB);
    expect(ops).toEqual([
      { op: 'deletePolicy', src: A, dst: C },
      ...v1.states.filter((s) => s.src === C || s.dst === C).map((s) => ({ op: 'deleteState', src: s.src, dst: s.dst, spi: s.spi })),
    ]);
  });

  it('removes everything of its own when no network is encrypted, and never touches others\' objects', () => {
    const k = kernelOf(v1);
    k.states.push({ src: A, dst: B, spi: 0x999, reqid: 1, proto: 50, mode: 0 });
    k.policies.push({ src: A, dst: B, srcPrefix: 32, dstPrefix: 32, proto: 17, dport: 4789, dir: 1, priority: 0 });
    const ops = planXfrm(k, null);
    expect(kinds(ops)).toEqual(['deletePolicy', 'deletePolicy', 'deleteState', 'deleteState', 'deleteState', 'deleteState']);
    expect(ops.some((o) => o.op === 'deleteState' && o.spi === 0x999)).toBe(false);
  });

  it('replaces a state whose key differs from the ring (a ring re-created while the agent was away)', () => {
    const k = kernelOf(v1);
    k.states[0]!.aead!.key = Buffer.alloc(20);
    expect(kinds(planXfrm(k, v1))).toEqual(['putState']);
  });
});
