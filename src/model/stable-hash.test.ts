import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { stableHash32, stableHash64 } from './stable-hash.js';

describe('stable hashes', () => {
  it('are the leading bits of sha256, the same when asked again', () => {
    const d = createHash('sha256').update('web\u00001\u0000host-a').digest();
    expect(stableHash64('web\u00001\u0000host-a')).toBe(d.readBigUInt64BE(0));
    expect(stableHash64('web\u00001\u0000host-a')).toBe(d.readBigUInt64BE(0));
    expect(stableHash32('lb /run/netns/t-abc')).toBe(createHash('sha256').update('lb /run/netns/t-abc').digest().readUInt32BE(0));
    expect(stableHash32('a')).not.toBe(stableHash32('b'));
  });
});
