import { describe, expect, it } from 'vitest';
import { gwAddressAmong } from './gwbridge.js';

describe('gwAddressAmong', () => {
  it('finds the gwbridge address by subnet on whichever interface holds it', () => {
    // After a task leaves the ingress network its interfaces shift: the leg that was eth2 may sit
    // anywhere in the list, and eth1 now holds an overlay address.
    const addrs = [
      { link: 'lo', cidr: '127.0.0.1/8' },
      { link: 'eth1', cidr: '10.0.1.11/24' },
      { link: 'eth2', cidr: '172.18.0.7/16' },
      { link: 'eth0', cidr: '10.255.0.11/16' },
    ];
    expect(gwAddressAmong(addrs, '172.18.0.0/16')).toBe('172.18.0.7');
  });

  it('returns nothing when the sandbox has no leg yet', () => {
    expect(gwAddressAmong([{ link: 'eth0', cidr: '10.0.1.11/24' }], '172.18.0.0/16')).toBeUndefined();
  });
});
