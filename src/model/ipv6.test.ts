import { describe, expect, test } from 'vitest';
import { checkOverlaySubnet6, checkSubnet6Free, chooseSubnet6, gateway6Of, ipv6PtrName, ipv6Twin, parseSubnet6, subnet6Contains } from './ipv6.js';
import { InvalidSpecError, SubnetOverlapError } from './model-errors.js';

describe('v6 subnets', () => {
  test('parses canonical and shorthand CIDRs, refuses host bits and v4', () => {
    expect(parseSubnet6('fd00:1::/64')?.prefixLength).toBe(64);
    expect(parseSubnet6('fd00:1:0:0::/64')).toEqual(parseSubnet6('fd00:1::/64'));
    expect(parseSubnet6('fd00:1::5/64')).toBeUndefined();
    expect(parseSubnet6('10.0.0.0/8')).toBeUndefined();
    expect(parseSubnet6('fd00::/129')).toBeUndefined();
  });

  test('a chosen /64 is deterministic per name, inside the ULA pool, and skips taken ones', () => {
    const a = chooseSubnet6('appnet', {});
    expect(a).toMatch(/^fd6d:6573:686e:[0-9a-f]{1,4}::\/64$/);
    expect(chooseSubnet6('appnet', {})).toBe(a);
    const b = chooseSubnet6('appnet', { [a]: 'other', '10.0.1.0/24': 'other' });
    expect(b).not.toBe(a);
    expect(() => checkSubnet6Free(b, { [a]: 'x' })).not.toThrow();
    expect(() => checkSubnet6Free(a, { 'fd6d:6573:686e::/48': 'big' })).toThrow(SubnetOverlapError);
  });

  test('user subnets must hold every v4 host offset', () => {
    expect(() => checkOverlaySubnet6('fd00:2::/64')).not.toThrow();
    expect(() => checkOverlaySubnet6('fd00:2::/112')).toThrow(InvalidSpecError);
    expect(() => checkOverlaySubnet6('fd00:2::1/64')).toThrow(/IPv6 CIDR/);
  });

  test('addresses are the v4 offset in the v6 subnet', () => {
    expect(gateway6Of('fd00:9::/64')).toBe('fd00:9::1');
    expect(ipv6Twin('10.0.9.0/24', 'fd00:9::/64', '10.0.9.7')).toBe('fd00:9::7');
    expect(ipv6Twin('10.255.0.0/16', 'fd00:ff::/64', '10.255.1.2')).toBe('fd00:ff::102');
    expect(subnet6Contains('fd00:9::/64', 'fd00:9::7')).toBe(true);
    expect(subnet6Contains('fd00:9::/64', 'fd00:8::7')).toBe(false);
  });

  test('PTR names are nibbles under ip6.arpa', () => {
    expect(ipv6PtrName('fd00::1')).toBe(`1.${'0.'.repeat(29)}d.f.ip6.arpa`);
  });
});
