import { describe, expect, it } from 'vitest';
import { nlAttr } from './netlink-attrs.js';
import { generationRequest, NftGenerations, parseGenerationReply } from './nft-generation.js';

/** A reply as the kernel sends it: nlmsghdr, nfgenmsg, then attributes in network byte order. */
function newGen(id: number, type = (10 << 8) | 15): Buffer {
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(id);
  const attrs = Buffer.concat([nlAttr(1, u32), nlAttr(2, Buffer.from([0, 0, 0x30, 0x39])), nlAttr(3, Buffer.from('nft\0'))]);
  const head = Buffer.alloc(20);
  head.writeUInt32LE(20 + attrs.length, 0);
  head.writeUInt16LE(type, 4);
  return Buffer.concat([head, attrs]);
}

describe('nf_tables generation codec', () => {
  it('asks with one NFT_MSG_GETGEN request of the nftables subsystem', () => {
    const req = generationRequest(42);
    expect(req.length).toBe(20);
    expect(req.readUInt32LE(0)).toBe(20);
    expect(req.readUInt16LE(4)).toBe((10 << 8) | 16);
    expect(req.readUInt16LE(6)).toBe(1);
    expect(req.readUInt32LE(8)).toBe(42);
  });

  it('reads NFTA_GEN_ID in network byte order', () => {
    expect(parseGenerationReply(newGen(0x01020304))).toBe(0x01020304);
  });

  it('gives null for an error, a truncated message, or a reply without the id', () => {
    const err = Buffer.alloc(36);
    err.writeUInt32LE(36, 0);
    err.writeUInt16LE(2, 4);
    err.writeInt32LE(-1, 16);
    expect(parseGenerationReply(err)).toBeNull();
    expect(parseGenerationReply(newGen(5).subarray(0, 18))).toBeNull();
    expect(parseGenerationReply(newGen(5, (10 << 8) | 0))).toBeNull();
    const bare = Buffer.alloc(20);
    bare.writeUInt32LE(20, 0);
    bare.writeUInt16LE((10 << 8) | 15, 4);
    expect(parseGenerationReply(bare)).toBeNull();
  });
});

describe('NftGenerations: whose commits moved a namespace', () => {
  it('follows a known generation through meshnet\'s own recorded commits, and no further', () => {
    let now = 10;
    const g = new NftGenerations(() => now);
    expect(g.since(10)).toBe(10);
    now = 12;
    expect(g.recordOwn(10, 12, 2)).toBe(true);
    now = 13;
    expect(g.recordOwn(12, 13, 1)).toBe(true);
    expect(g.since(10)).toBe(13);
    expect(g.since(12)).toBe(13);
    // Someone else committed: no chain of our own commits reaches 14.
    now = 14;
    expect(g.since(10)).toBeNull();
    expect(g.since(null)).toBeNull();
  });

  it('records a write only when its own commits account for the whole move', () => {
    const g = new NftGenerations(() => 20);
    expect(g.recordOwn(17, 20, 2)).toBe(false);
    expect(g.recordOwn(null, 20, 1)).toBe(false);
    expect(g.recordOwn(19, 20, 0)).toBe(false);
    expect(g.since(17)).toBeNull();
  });

  it('knows nothing without a generation to read', () => {
    const g = NftGenerations.unknown();
    expect(g.current()).toBeNull();
    expect(g.since(5)).toBeNull();
  });
});
