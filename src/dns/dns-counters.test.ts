import { describe, expect, it } from 'vitest';
import { addDnsCounters, countAnswer, emptyDnsCounters, rcodeName } from './dns-counters.js';

describe('dns counters', () => {
  it('counts answers by the rcode in the header and sums workers', () => {
    const a = emptyDnsCounters();
    const header = (rcode: number) => Uint8Array.from([0, 1, 0x81, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0]);
    countAnswer(a, header(0));
    countAnswer(a, header(3));
    countAnswer(a, header(3));
    a.queries = 4;
    a.dropped = 1;
    const sum = addDnsCounters(addDnsCounters(emptyDnsCounters(), a), a);
    expect(sum.queries).toBe(8);
    expect(sum.dropped).toBe(2);
    expect(sum.answers[0]).toBe(2);
    expect(sum.answers[3]).toBe(4);
    expect([0, 2, 3, 5, 12].map(rcodeName)).toEqual(['NOERROR', 'SERVFAIL', 'NXDOMAIN', 'REFUSED', 'RCODE12']);
  });
});
