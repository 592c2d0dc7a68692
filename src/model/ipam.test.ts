import { describe, expect, test } from 'vitest';
import { checkOverlaySubnet, checkSubnetFree, chooseAddress, choosePort, chooseSubnet, chooseVni, gatewayOf, isHostAddress } from './ipam.js';
import { macFromIpv4, parseSubnet, subnetsOverlap } from './ipv4.js';
import { InvalidSpecError, PoolExhaustedError, SubnetOverlapError } from './model-errors.js';

describe('ipv4 helpers', () => {
  test('subnets parse strictly and overlap correctly', () => {
    expect(parseSubnet('10.0.1.0/24')).toEqual({ network: 0x0a000100, prefixLength: 24 });
    expect(parseSubnet('10.0.1.1/24')).toBeUndefined();
    expect(parseSubnet('10.0.1.0/33')).toBeUndefined();
    expect(parseSubnet('10.0.01.0/24')).toBeUndefined();
    expect(subnetsOverlap(parseSubnet('10.0.0.0/16')!, parseSubnet('10.0.5.0/24')!)).toBe(true);
    expect(subnetsOverlap(parseSubnet('10.0.0.0/24')!, parseSubnet('10.0.1.0/24')!)).toBe(false);
  });

  test('MACs follow Docker: 02:42 + address bytes', () => {
    expect(macFromIpv4('10.0.1.2')).toBe('02:42:0a:00:01:02');
    expect(macFromIpv4('10.255.0.254')).toBe('02:42:0a:ff:00:fe');
  });
});

describe('subnets', () => {
  test('first free /24, skipping taken, large taken blocks and the ingress range', () => {
    expect(chooseSubnet({})).toBe('10.0.0.0/24');
    expect(chooseSubnet({ '10.0.0.0/24': 'a', '10.0.2.0/24': 'b' })).toBe('10.0.1.0/24');
    expect(chooseSubnet({ '10.0.0.0/16': 'big' })).toBe('10.1.0.0/24');
    expect(chooseSubnet({ '10.0.0.0/24': 'a', '10.0.1.0/28': 'small' })).toBe('10.0.2.0/24');
  });

  test('exhaustion is a typed error', () => {
    const all = { '10.0.0.0/9': 'x', '10.128.0.0/10': 'y', '10.192.0.0/11': 'z', '10.224.0.0/12': 'w', '10.240.0.0/13': 'v', '10.248.0.0/14': 'u', '10.252.0.0/15': 't', '10.254.0.0/16': 's' };
    expect(() => chooseSubnet(all)).toThrow(PoolExhaustedError);
    expect(() => chooseSubnet(all)).toThrow(/no free subnet/);
  });

  test('overlap with a taken subnet or the ingress range is refused with the culprit named', () => {
    expect(() => checkSubnetFree('10.0.1.0/24', { '10.0.0.0/16': 'backend' })).toThrow(SubnetOverlapError);
    expect(() => checkSubnetFree('10.0.1.0/24', { '10.0.0.0/16': 'backend' })).toThrow(/overlaps 10\.0\.0\.0\/16 \(network backend\)/);
    expect(() => checkSubnetFree('10.1.0.0/24', { '10.0.0.0/16': 'backend' })).not.toThrow();
    expect(() => checkOverlaySubnet('10.255.3.0/24', false)).toThrow(/reserved ingress range/);
    expect(() => checkOverlaySubnet('10.255.0.0/16', true)).not.toThrow();
    expect(() => checkOverlaySubnet('10.9.0.0/30', false)).toThrow(InvalidSpecError);
    expect(() => checkOverlaySubnet('banana', false)).toThrow(/not an IPv4 CIDR/);
  });

  test('gateway is the first host address', () => {
    expect(gatewayOf('10.0.7.0/24')).toBe('10.0.7.1');
    expect(gatewayOf('10.255.0.0/16')).toBe('10.255.0.1');
  });
});

describe('VNIs, addresses, ports', () => {
  test('VNIs start at 4096 and skip used ones', () => {
    expect(chooseVni(new Set())).toBe(4096);
    expect(chooseVni(new Set([4096, 4097, 4099]))).toBe(4098);
  });

  test('addresses skip network, broadcast and used ones; exhaustion names the network', () => {
    expect(chooseAddress('10.0.1.0/24', new Set(['10.0.1.1']), 'web')).toBe('10.0.1.2');
    const used = new Set(['10.0.2.1', '10.0.2.2', '10.0.2.3', '10.0.2.4', '10.0.2.5']);
    expect(chooseAddress('10.0.2.0/29', used, 'tiny')).toBe('10.0.2.6');
    used.add('10.0.2.6');
    expect(() => chooseAddress('10.0.2.0/29', used, 'tiny')).toThrow(PoolExhaustedError);
    expect(() => chooseAddress('10.0.2.0/29', used, 'tiny')).toThrow(/network tiny/);
    expect(isHostAddress('10.0.2.0/29', '10.0.2.7')).toBe(false);
    expect(isHostAddress('10.0.2.0/29', '10.0.2.0')).toBe(false);
    expect(isHostAddress('10.0.2.0/29', '10.0.2.6')).toBe(true);
  });

  test('retries spread over free addresses and never return a used one', () => {
    const used = new Set(['10.0.1.1', '10.0.1.3']);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(chooseAddress('10.0.1.0/24', used, 'n', 1));
    expect(seen.size).toBeGreaterThan(5);
    for (const ip of seen) expect(used.has(ip)).toBe(false);
  });

  test('dynamic ports come from 30000-32767 and run out with a typed error', () => {
    expect(choosePort(new Set())).toBe(30000);
    expect(choosePort(new Set([30000, 30001]))).toBe(30002);
    const all = new Set(Array.from({ length: 2768 }, (_, i) => 30000 + i));
    expect(() => choosePort(all)).toThrow(PoolExhaustedError);
    all.delete(32767);
    expect(choosePort(all)).toBe(32767);
  });
});
