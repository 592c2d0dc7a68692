import { createRequire } from 'node:module';
import type * as NL from 'netlink';
import { describe, expect, it } from 'vitest';
import { walkNlAttrs } from './netlink-attrs.js';
import { vtepBuffer, vtepFromBuffer, vxlanLocalAttr } from './vtep-attrs.js';

const nl = createRequire(import.meta.url)('netlink') as typeof NL;
/** linux/if_link.h */
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_LOCAL6 = 17;
/** linux/neighbour.h */
const NDA_DST = 1;

/** The attributes as they go on the wire (what the kernel parses), by type. */
function wire(data: NL.StreamData): Map<number, Buffer> {
  const s = new nl.AttrStream();
  s.emit(data);
  return new Map(walkNlAttrs(Buffer.concat(s.bufs)).attrs.map((a) => [a.type, a.data]));
}

describe('VTEP attributes', () => {
  it('encodes a v6 local as IFLA_VXLAN_LOCAL6 (16 bytes) and no IFLA_VXLAN_LOCAL', () => {
    const attrs = wire(nl.ifla.formatVxlan({ id: 4096, ...vxlanLocalAttr('2001:db8::11') }));
    expect(attrs.get(IFLA_VXLAN_LOCAL6)?.toString('hex')).toBe('20010db8000000000000000000000011');
    expect(attrs.has(IFLA_VXLAN_LOCAL)).toBe(false);
  });

  it('keeps a v4 local in IFLA_VXLAN_LOCAL (4 bytes), as before', () => {
    const attrs = wire(nl.ifla.formatVxlan({ id: 4096, ...vxlanLocalAttr('192.0.2.1') }));
    expect(attrs.get(IFLA_VXLAN_LOCAL)?.toString('hex')).toBe('c0000201');
    expect(attrs.has(IFLA_VXLAN_LOCAL6)).toBe(false);
  });

  it('writes an FDB dst as NDA_DST of 16 bytes for v6 and 4 for v4, and reads both back as canonical text', () => {
    const v6 = wire(nl.rt.formatNeighborAttrs({ dst: vtepBuffer('2001:DB8:0::2') })).get(NDA_DST)!;
    expect(v6).toHaveLength(16);
    expect(vtepFromBuffer(v6)).toBe('2001:db8::2');
    const v4 = wire(nl.rt.formatNeighborAttrs({ dst: vtepBuffer('192.0.2.2') })).get(NDA_DST)!;
    expect(v4).toHaveLength(4);
    expect(vtepFromBuffer(v4)).toBe('192.0.2.2');
  });

  it('refuses what is no address before anything is sent', () => {
    expect(() => vtepBuffer('fe80::1%eth0')).toThrow(/invalid/);
    expect(() => vxlanLocalAttr('not-an-ip')).toThrow(/invalid/);
  });
});
