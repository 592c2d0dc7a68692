import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { compileAnswerTable } from './answer-table.js';
import { handleQuery } from './query-handler.js';
import { decodeLoose, queryWire, sampleView } from './test-fixtures.js';

const table = compileAnswerTable(sampleView(), { forwarding: true });

function rcodeOf(wire: Buffer): number {
  return wire.readUInt16BE(2) & 0xf;
}

function expectBareError(msg: Buffer, rcode: number): void {
  const o = handleQuery(table, msg, 'udp');
  if (o.kind !== 'error') throw new Error(`expected an error answer, got ${o.kind}`);
  expect(rcodeOf(o.wire)).toBe(rcode);
  expect(o.wire.readUInt16BE(0)).toBe(msg.length >= 2 ? msg.readUInt16BE(0) : 0);
  expect(o.wire.readUInt16BE(2) & 0x8000).toBeTruthy();
  expect(o.wire.length).toBeLessThanOrEqual(msg.length);
}

const good = queryWire('web', 'A');

describe('malformed input classes', () => {
  it('drops packets shorter than a header, and empty ones', () => {
    expect(handleQuery(table, Buffer.alloc(0), 'udp').kind).toBe('drop');
    expect(handleQuery(table, good.subarray(0, 11), 'udp').kind).toBe('drop');
  });

  it('drops responses (QR set), so two resolvers can never loop and spoofed answers are not reflected', () => {
    const r = Buffer.from(good);
    r[2]! |= 0x80;
    expect(handleQuery(table, r, 'udp').kind).toBe('drop');
  });

  it('drops oversized packets unread', () => {
    const big = Buffer.concat([good, Buffer.alloc(5000)]);
    expect(handleQuery(table, big, 'udp').kind).toBe('drop');
  });

  it('answers UPDATE, NOTIFY, STATUS and IQUERY opcodes with a bare NOTIMP', () => {
    for (const opcode of [1, 2, 4, 5, 15]) {
      const m = Buffer.from(good);
      m[2] = (m[2]! & 0x87) | (opcode << 3);
      expectBareError(m, 4);
    }
  });

  it('answers wrong counts with a bare FORMERR', () => {
    for (const [at, value] of [[5, 0], [5, 2], [7, 1], [9, 1], [11, 2]] as const) {
      const m = Buffer.from(good);
      m[at] = value;
      expectBareError(m, 1);
    }
  });

  it('answers compression pointers and loops in the question with FORMERR, without following them', () => {
    const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    expectBareError(loop, 1);
    const fwd = Buffer.concat([good.subarray(0, 12), Buffer.from([3, 0x77, 0x65, 0x62, 0xc0, 12, 0, 1, 0, 1])]);
    expectBareError(fwd, 1);
  });

  it('answers reserved label types, over-long names and truncated questions with FORMERR', () => {
    expectBareError(Buffer.concat([good.subarray(0, 12), Buffer.from([0x41, 1, 0, 0, 1, 0, 1])]), 1);
    const long = Buffer.concat([good.subarray(0, 12), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0, 0, 1, 0, 1])]);
    expectBareError(long, 1);
    expectBareError(good.subarray(0, good.length - 2), 1);
    expectBareError(Buffer.concat([good.subarray(0, 12), Buffer.from([10, 0x61, 0x62])]), 1);
  });

  it('answers trailing garbage and a non-OPT additional record with FORMERR', () => {
    expectBareError(Buffer.concat([good, Buffer.from([1, 2, 3])]), 1);
    const withA = Buffer.from(queryWire('web', 'A', { edns: 1232 }));
    withA[good.length + 2] = 1; // OPT -> A
    expectBareError(withA, 1);
    const badLen = Buffer.from(queryWire('web', 'A', { edns: 1232 }));
    badLen[badLen.length - 1] = 9; // rdlength past the end
    expectBareError(badLen, 1);
  });

  it('answers EDNS version 1 with BADVERS in the OPT record', () => {
    const m = Buffer.from(queryWire('web', 'A', { edns: 1232 }));
    m[good.length + 6] = 1;
    const o = handleQuery(table, m, 'udp');
    if (o.kind !== 'error') throw new Error(o.kind);
    const p = decodeLoose(o.wire);
    expect(p.additionals?.[0]?.type).toBe('OPT');
    expect(o.wire[o.wire.length - 11 + 5]).toBe(1);
    expect(o.wire.length).toBeLessThanOrEqual(m.length);
  });

  it('refuses zone transfers and other classes', () => {
    const axfr = handleQuery(table, queryWire('web', 'AXFR'), 'tcp');
    expect(axfr.kind === 'error' && rcodeOf(axfr.wire)).toBe(5);
    const chaos = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }] });
    const o = handleQuery(table, chaos, 'udp');
    expect(o.kind === 'error' && rcodeOf(o.wire)).toBe(5);
  });
});

describe('fuzz', () => {
  it('100,000 random and bit-flipped packets never throw or amplify while real queries keep their answers', () => {
    let seed = 0x9e3779b9;
    const rand = (): number => {
      // xorshift32: reproducible, so a failure can be replayed
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 0x100000000;
    };
    const seeds = [queryWire('web', 'A'), queryWire('tasks.web', 'A', { edns: 1232 }), queryWire('_80._tcp.web', 'SRV'), queryWire('4.2.0.10.in-addr.arpa', 'PTR'), queryWire('example.com', 'AAAA')];
    const legit = queryWire('web.back', 'A', { id: 4242 });
    const counts = { reply: 0, error: 0, drop: 0, forward: 0 };
    for (let i = 0; i < 100_000; i++) {
      let pkt: Buffer;
      if (i % 2 === 0) {
        pkt = Buffer.alloc(Math.floor(rand() * 600));
        for (let j = 0; j < pkt.length; j++) pkt[j] = Math.floor(rand() * 256);
      } else {
        pkt = Buffer.from(seeds[i % seeds.length]!);
        const flips = 1 + Math.floor(rand() * 4);
        for (let f = 0; f < flips; f++) {
          const bit = Math.floor(rand() * pkt.length * 8);
          pkt[bit >> 3]! ^= 1 << (bit & 7);
        }
      }
      const o = handleQuery(table, pkt, 'udp');
      counts[o.kind]++;
      if (o.kind === 'error') expect(o.wire.length).toBeLessThanOrEqual(pkt.length);
      if (o.kind === 'reply') expect(o.wire.length).toBeLessThanOrEqual(4096);
      if (i % 1000 === 0) {
        const r = handleQuery(table, legit, 'udp');
        if (r.kind !== 'reply') throw new Error(`legitimate query got ${r.kind} after ${i} fuzz packets`);
        const p = decodeLoose(r.wire);
        expect(p.id).toBe(4242);
        expect(p.answers?.map((a) => a.data)).toEqual(['10.0.2.2']);
      }
    }
    // every class of outcome was exercised, so the fuzz reached past the header checks
    expect(counts.reply).toBeGreaterThan(100);
    expect(counts.error).toBeGreaterThan(1000);
    expect(counts.drop).toBeGreaterThan(1000);
    expect(counts.forward).toBeGreaterThan(100);
  });
});
