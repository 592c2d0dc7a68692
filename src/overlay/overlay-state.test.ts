import { describe, expect, it } from 'vitest';
import { desiredOverlayState, hostIfName } from './overlay-state.js';
import type { OverlayInput } from './overlay-spec.js';
import { InvalidSandboxInputError } from '../sandbox/errors.js';

const base = (): OverlayInput => ({
  network: { name: 'appnet', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
  underlayMtu: 1500,
  local: [{ id: 'web.1', sandbox: '/run/x/t1', ifname: 'eth0', ip: '10.0.1.2', mac: '02:42:0A:00:01:02', defaultRoute: true }],
  remote: [
    { ip: '10.0.1.9', mac: '02:42:0a:00:01:09', vtep: '192.0.2.3' },
    { ip: '10.0.1.10', mac: '02:42:0a:00:01:0a', vtep: '192.0.2.2' },
  ],
});

describe('desiredOverlayState', () => {
  it('derives br0, vxlan0 and the MTU from the underlay (1500 - 50)', () => {
    const s = desiredOverlayState(base());
    expect(s.netns).toBe('ov-appnet');
    expect(s.bridge).toEqual({ name: 'br0', cidr: '10.0.1.1/24', mtu: 1450 });
    expect(s.vxlan).toEqual({ name: 'vxlan0', vni: 4096, port: 4789, mtu: 1450, learning: false, proxy: true });
    expect(s.endpoints[0]).toMatchObject({ cidr: '10.0.1.2/24', mac: '02:42:0a:00:01:02', mtu: 1450, gateway: '10.0.1.1' });
  });

  it('sorts peers numerically so equal inputs give equal states', () => {
    const a = desiredOverlayState(base());
    const input = base();
    input.remote.reverse();
    expect(desiredOverlayState(input)).toEqual(a);
    expect(a.peers.map((p) => p.ip)).toEqual(['10.0.1.9', '10.0.1.10']);
  });

  it('names host-side veths stably within the 15-character limit', () => {
    expect(hostIfName('web.1', 4096)).toBe(hostIfName('web.1', 4096));
    expect(hostIfName('web.1', 4096)).not.toBe(hostIfName('web.2', 4096));
    expect(hostIfName('a-very-long-task-identifier-000000', 16_000_000)).toHaveLength(13);
  });

  const bad: [string, (i: OverlayInput) => void, RegExp][] = [
    ['VNI 0', (i) => (i.network.vni = 0), /VNI 0 .*out of range/],
    ['VNI above 2^24-1', (i) => (i.network.vni = 16_777_216), /out of range/],
    ['an invalid CIDR', (i) => (i.network.subnet = '10.0.1.0/33'), /invalid CIDR/],
    ['a gateway outside the subnet', (i) => (i.network.gateway = '10.0.2.1'), /not inside/],
    ['a duplicate IP', (i) => (i.remote[0]!.ip = '10.0.1.2'), /duplicate IP 10.0.1.2/],
    ['the gateway used by an endpoint', (i) => (i.local[0]!.ip = '10.0.1.1'), /duplicate IP 10.0.1.1.*gateway/],
    ['an endpoint outside the subnet', (i) => (i.local[0]!.ip = '10.9.9.9'), /not inside 10.0.1.0\/24/],
    ['a bad MAC', (i) => (i.local[0]!.mac = '02:42'), /invalid MAC/],
    ['a bad VTEP', (i) => (i.remote[0]!.vtep = 'host-b'), /invalid VTEP/],
    ['a tiny underlay MTU', (i) => (i.underlayMtu = 600), /MTU 600/],
    ['a bad network name', (i) => (i.network.name = 'App Net'), /invalid network name/],
    ['a bad interface name', (i) => (i.local[0]!.ifname = 'eth0 ; rm'), /invalid interface name/],
  ];
  for (const [what, mutate, message] of bad) {
    it(`rejects ${what}`, () => {
      const input = base();
      mutate(input);
      expect(() => desiredOverlayState(input)).toThrow(InvalidSandboxInputError);
      expect(() => desiredOverlayState(input)).toThrow(message);
    });
  }
});
