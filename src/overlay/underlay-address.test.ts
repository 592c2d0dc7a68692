import { describe, expect, it } from 'vitest';
import { canonicalUnderlay, checkUnderlayFamily, underlayAddressProblem, underlayFamily, UnderlayFamilyError, vxlanOverhead } from './underlay-address.js';

describe('underlayAddressProblem', () => {
  it('takes any v4 address and any v6 unicast, global or unique-local', () => {
    for (const ip of ['192.0.2.1', '10.1.0.9', '2001:db8::11', 'fd00:1::5', '2a01:4f8:c17:1::1']) expect(underlayAddressProblem(ip), ip).toBeUndefined();
  });

  it('names why a v6 address cannot carry VXLAN to other hosts', () => {
    expect(underlayAddressProblem('fe80::1')).toMatch(/link-local/);
    expect(underlayAddressProblem('::1')).toMatch(/loopback/);
    expect(underlayAddressProblem('::')).toMatch(/unspecified/);
    expect(underlayAddressProblem('ff02::1')).toMatch(/multicast/);
    expect(underlayAddressProblem('::ffff:192.0.2.1')).toMatch(/v4-mapped.*IPv4 address itself/);
  });

  it('refuses what is no address, and a v6 address with a zone', () => {
    expect(underlayAddressProblem('host-a')).toMatch(/not an IPv4 or IPv6 address/);
    expect(underlayAddressProblem('fe80::1%eth0')).toMatch(/not an IPv4 or IPv6 address/);
    expect(underlayAddressProblem('192.0.2.1/24')).toMatch(/not an IPv4 or IPv6 address/);
  });
});

describe('underlay family, text and VXLAN overhead', () => {
  it('tells the family and writes v6 in the text the kernel reads back', () => {
    expect(underlayFamily('192.0.2.1')).toBe('ipv4');
    expect(underlayFamily('2001:db8::11')).toBe('ipv6');
    expect(canonicalUnderlay('2001:0DB8:0000::0011')).toBe('2001:db8::11');
    expect(canonicalUnderlay('192.0.2.1')).toBe('192.0.2.1');
  });

  it('takes 50 bytes over v4 (and when no local VTEP is known) and 70 over v6, whose header is 20 bytes longer', () => {
    expect(vxlanOverhead('192.0.2.1')).toBe(50);
    expect(vxlanOverhead(undefined)).toBe(50);
    expect(vxlanOverhead('2001:db8::1')).toBe(70);
  });
});

describe('checkUnderlayFamily', () => {
  const v6nodes = [{ id: 'host-a', underlayIp: '2001:db8::1' }, { id: 'host-b', underlayIp: '2001:db8::2' }];

  it('lets a node join peers of its own family, and itself re-register whatever its old record said', () => {
    expect(() => checkUnderlayFamily('2001:db8::3', 'host-c', v6nodes)).not.toThrow();
    expect(() => checkUnderlayFamily('192.0.2.1', 'host-a', [{ id: 'host-a', underlayIp: '2001:db8::1' }])).not.toThrow();
    expect(() => checkUnderlayFamily('192.0.2.1', 'host-a', [])).not.toThrow();
  });

  it('refuses a node of the other family, naming the peer and the family to give', () => {
    expect(() => checkUnderlayFamily('192.0.2.3', 'host-c', v6nodes)).toThrow(UnderlayFamilyError);
    expect(() => checkUnderlayFamily('192.0.2.3', 'host-c', v6nodes)).toThrow(/192\.0\.2\.3 is IPv4 but node host-a advertises 2001:db8::1 \(IPv6\).*give this agent an IPv6 --advertise-addr/);
  });
});
