import { describe, expect, it } from 'vitest';
import { attr, decodePolicy, decodeSa, encodeOutPolicy, encodePolicyId, encodeSa, encodeSaId, ESP_AEAD, parseAttrs, XfrmAttr } from './xfrm-codec.js';

const key = Buffer.from('000102030405060708090a0b0c0d0e0f10111213', 'hex');

describe('xfrm codec', () => {
  it('encodes an SA as xfrm_usersa_info (224 bytes) + XFRMA_ALG_AEAD, the fields at the offsets linux/xfrm.h gives', () => {
    const b = encodeSa({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x12345678, reqid: 7, key, replayWindow: 64 });
    expect(b.subarray(56, 60)).toEqual(Buffer.from([192, 0, 2, 2])); // id.daddr
    expect(b.readUInt32BE(72)).toBe(0x12345678); // id.spi, network order
    expect(b.readUInt8(76)).toBe(50); // id.proto ESP
    expect(b.subarray(80, 84)).toEqual(Buffer.from([192, 0, 2, 1])); // saddr
    expect(b.readBigUInt64LE(96)).toBe(0xffffffffffffffffn); // lft.soft_byte_limit
    expect(b.readUInt32LE(208)).toBe(7); // reqid
    expect(b.readUInt16LE(212)).toBe(2); // AF_INET
    expect(b.readUInt8(214)).toBe(0); // transport
    expect(b.readUInt8(215)).toBe(64);
    const alg = parseAttrs(b, 224).get(XfrmAttr.ALG_AEAD)!;
    expect(alg.toString('latin1', 0, ESP_AEAD.length)).toBe('rfc4106(gcm(aes))');
    expect(alg.readUInt32LE(64)).toBe(160); // key bits: 128 + 32 salt
    expect(alg.readUInt32LE(68)).toBe(128); // ICV bits
    expect(alg.subarray(72)).toEqual(key);
  });

  it('reads back what it wrote, as a dump reply carries it', () => {
    const sa = decodeSa(encodeSa({ src: '10.1.2.3', dst: '10.3.2.1', spi: 0xfffffff0, reqid: 0x6d6e7431, key, replayWindow: 32 }))!;
    expect(sa).toMatchObject({ src: '10.1.2.3', dst: '10.3.2.1', spi: 0xfffffff0, reqid: 0x6d6e7431, proto: 50, mode: 0 });
    expect(sa.aead).toEqual({ name: ESP_AEAD, icvBits: 128, key });
  });

  it('refuses a key that is not AES-128 + salt', () => {
    expect(() => encodeSa({ src: '10.0.0.1', dst: '10.0.0.2', spi: 300, reqid: 1, key: Buffer.alloc(16), replayWindow: 0 })).toThrow(/20 bytes/);
  });

  it('encodes an outbound policy with its template pinning the SPI and its mark, and reads it back', () => {
    const b = encodeOutPolicy({ src: '192.0.2.1', dst: '192.0.2.3', dport: 4789, mark: 0xd0c4e3, priority: 1000, spi: 0xabcdef01, reqid: 9 });
    expect(b.readUInt16BE(32)).toBe(4789);
    expect(b.readUInt16BE(34)).toBe(0xffff);
    expect(b.readUInt8(44)).toBe(17);
    expect(b.readUInt8(160)).toBe(1); // XFRM_POLICY_OUT
    expect(decodePolicy(b)).toEqual({
      src: '192.0.2.1', dst: '192.0.2.3', srcPrefix: 32, dstPrefix: 32, proto: 17, dport: 4789, dir: 1, priority: 1000,
      mark: { value: 0xd0c4e3, mask: 0xffffffff },
      tmpl: { src: '192.0.2.1', dst: '192.0.2.3', spi: 0xabcdef01, reqid: 9, proto: 50, mode: 0 },
    });
  });

  it('encodes the ids of DELSA and DELPOLICY', () => {
    const sa = encodeSaId({ dst: '192.0.2.9', spi: 0x101 });
    expect([sa.length, sa.readUInt32BE(16), sa.readUInt16LE(20), sa.readUInt8(22)]).toEqual([24, 0x101, 2, 50]);
    const pol = encodePolicyId({ src: '192.0.2.1', dst: '192.0.2.9', dport: 4789, mark: 0xd0c4e3 });
    expect(pol.readUInt8(60)).toBe(1);
    expect(parseAttrs(pol, 64).get(XfrmAttr.MARK)!.readUInt32LE(0)).toBe(0xd0c4e3);
  });

  it('pads attributes to 4 bytes and stops at a truncated one', () => {
    const a = attr(1, Buffer.from([1, 2, 3, 4, 5]));
    expect(a.length).toBe(12);
    expect(a.readUInt16LE(0)).toBe(9);
    expect(parseAttrs(Buffer.concat([a, Buffer.from([40, 0, 2, 0])]), 0).size).toBe(1);
  });
});
