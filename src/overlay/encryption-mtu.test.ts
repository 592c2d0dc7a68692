import { describe, expect, it } from 'vitest';
import { overlayUnderlayMtu } from './encryption-mtu.js';
import { VXLAN_OVERHEAD } from './overlay-spec.js';

/** Size on the wire of an inner frame of `innerMtu` bytes, VXLAN in ESP transport mode (RFC 4303/4106), counted field by field. */
function espPacketSize(innerMtu: number): number {
  const udpPayload = 8 + 14 + innerMtu; // VXLAN header, inner Ethernet, inner packet
  const plaintext = 8 + udpPayload + 2; // UDP header ... pad length, next header
  const padded = Math.ceil(plaintext / 4) * 4;
  return 20 + 4 + 4 + 8 + padded + 16; // IPv4, SPI, sequence, IV, ..., ICV
}

describe('overlayUnderlayMtu', () => {
  it('leaves a plain network the whole underlay MTU', () => {
    expect(overlayUnderlayMtu(1500, {})).toBe(1500);
    expect(overlayUnderlayMtu(1500, { encrypted: 'false' })).toBe(1500);
  });

  it('gives an encrypted network frames whose ESP packet fits the underlay, wasting less than the padding', () => {
    for (const underlay of [1280, 1450, 1500, 1501, 1502, 1503, 8950, 9000]) {
      const innerMtu = overlayUnderlayMtu(underlay, { encrypted: '' }) - VXLAN_OVERHEAD;
      expect(espPacketSize(innerMtu), `underlay ${underlay}`).toBeLessThanOrEqual(underlay);
      expect(espPacketSize(innerMtu + 4), `underlay ${underlay}`).toBeGreaterThan(underlay);
    }
    expect(overlayUnderlayMtu(1500, { encrypted: '' }) - VXLAN_OVERHEAD).toBe(1413);
  });
});
