import { describe, expect, it } from 'vitest';
import { InvalidMeshInputError } from './errors.js';
import { chooseGwbridgeSubnet, GwbridgeSubnetExhaustedError } from './gwbridge-subnet.js';

describe('chooseGwbridgeSubnet', () => {
  it('takes 172.18.0.0/16 on a host that uses none of it; a default route claims nothing', () => {
    expect(chooseGwbridgeSubnet([])).toBe('172.18.0.0/16');
    expect(chooseGwbridgeSubnet([{ cidr: '0.0.0.0/0', dev: 'eth0' }, { cidr: '192.168.1.7/24', dev: 'eth0' }])).toBe('172.18.0.0/16');
  });

  it('skips every /16 a route or address overlaps, Docker\'s networks first among them', () => {
    const docker = [
      { cidr: '172.17.0.1/16', dev: 'docker0' },
      { cidr: '172.18.0.1/16', dev: 'docker_gwbridge' },
      { cidr: '172.19.5.0/24', dev: 'br-1234' },
    ];
    expect(chooseGwbridgeSubnet(docker)).toBe('172.20.0.0/16');
    // A wider route covers several candidates at once; a host route inside one is enough to skip it.
    expect(chooseGwbridgeSubnet([{ cidr: '172.16.0.0/12' }])).toBe('10.254.0.0/16');
    expect(chooseGwbridgeSubnet([{ cidr: '172.16.0.0/13' }, { cidr: '172.24.3.4/32' }])).toBe('172.25.0.0/16');
  });

  it('after 172.31 goes to 10.x from the top, below the ingress /16, and honours excluded subnets', () => {
    const all172 = [{ cidr: '172.16.0.0/12' }];
    expect(chooseGwbridgeSubnet(all172, { exclude: ['10.254.0.0/24'] })).toBe('10.253.0.0/16');
    expect(chooseGwbridgeSubnet([...all172, { cidr: '10.128.0.0/9' }])).toBe('10.127.0.0/16');
  });

  it('keeps the subnet the bridge already holds, so a restart does not renumber tasks', () => {
    const host = [
      { cidr: '172.18.0.1/16', dev: 'docker_gwbridge' },
      { cidr: '172.22.0.1/16', dev: 'meshnet_gwbr' },
      { cidr: 'fe80::1/64', dev: 'meshnet_gwbr' },
    ];
    expect(chooseGwbridgeSubnet(host, { bridge: 'meshnet_gwbr' })).toBe('172.22.0.0/16');
    expect(chooseGwbridgeSubnet(host.slice(0, 1), { bridge: 'meshnet_gwbr' })).toBe('172.19.0.0/16');
  });

  it('ignores IPv6, rejects what is not a CIDR, and says what to do when nothing is free', () => {
    expect(chooseGwbridgeSubnet([{ cidr: '2001:db8::/32' }])).toBe('172.18.0.0/16');
    expect(() => chooseGwbridgeSubnet([{ cidr: '172.18.0.1' }])).toThrow(InvalidMeshInputError);
    expect(() => chooseGwbridgeSubnet([{ cidr: '300.1.1.1/8' }])).toThrow(/invalid host address or route "300\.1\.1\.1\/8"/);
    const full = [{ cidr: '172.16.0.0/12' }, { cidr: '10.0.0.0/8' }];
    expect(() => chooseGwbridgeSubnet(full)).toThrow(GwbridgeSubnetExhaustedError);
    expect(() => chooseGwbridgeSubnet(full)).toThrow(/give one with --gwbridge-subnet/);
  });
});
