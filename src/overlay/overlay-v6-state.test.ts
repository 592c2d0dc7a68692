import { describe, expect, test } from 'vitest';
import type { OverlayInput } from './overlay-spec.js';
import { desiredOverlayState } from './overlay-state.js';
import { planOverlayV6 } from './overlay-v6-state.js';

const base: OverlayInput = {
  network: { name: 'six', vni: 4097, subnet: '10.0.9.0/24', gateway: '10.0.9.1' },
  underlayMtu: 1500,
  local: [{ id: 't1', sandbox: '/run/x/t1', ifname: 'eth0', ip: '10.0.9.3', mac: '02:42:0a:00:09:03' }],
  remote: [{ ip: '10.0.9.4', mac: '02:42:0a:00:09:04', vtep: '192.0.2.2' }],
};
const dual: OverlayInput = {
  ...base,
  network: { ...base.network, subnet6: 'fd00:9::/64', gateway6: 'fd00:9::1' },
  local: [{ ...base.local[0]!, ip6: 'fd00:9::3' }],
  remote: [{ ...base.remote[0]!, ip6: 'fd00:9::4' }],
};

describe('dual-stack overlay state', () => {
  test('a v4-only network has no v6 part at all', () => {
    expect(desiredOverlayState(base)).not.toHaveProperty('ipv6');
  });

  test('a dual-stack network adds br0, endpoint and neighbour v6 entries', () => {
    expect(desiredOverlayState(dual).ipv6).toEqual({
      bridgeCidr: 'fd00:9::1/64',
      endpoints: [{ sandbox: '/run/x/t1', ifname: 'eth0', cidr: 'fd00:9::3/64' }],
      peers: [{ ip: 'fd00:9::4', mac: '02:42:0a:00:09:04' }],
    });
  });

  test('v6 addresses outside the v6 subnet, or on a v4-only network, are refused', () => {
    expect(() => desiredOverlayState({ ...dual, remote: [{ ...dual.remote[0]!, ip6: 'fd00:8::4' }] })).toThrow(/not inside fd00:9::\/64/);
    expect(() => desiredOverlayState({ ...base, local: [{ ...base.local[0]!, ip6: 'fd00:9::3' }] })).toThrow(/not dual stack/);
  });

  test('plans only the difference, removing stale neighbours and addresses', () => {
    const desired = desiredOverlayState(dual).ipv6!;
    const fresh = planOverlayV6({ bridgeCidrs: [], sandboxCidrs: {}, neighbors: [] }, desired);
    expect(fresh).toEqual([
      { op: 'replaceAddress6', sandbox: null, ifname: 'br0', cidr: 'fd00:9::1/64' },
      { op: 'replaceNeighbor6', ip: 'fd00:9::4', mac: '02:42:0a:00:09:04' },
      { op: 'replaceAddress6', sandbox: '/run/x/t1', ifname: 'eth0', cidr: 'fd00:9::3/64' },
    ]);
    const done = { bridgeCidrs: ['fd00:9::1/64'], sandboxCidrs: { '/run/x/t1': { eth0: ['fd00:9::3/64'] } }, neighbors: [{ ip: 'fd00:9::4', mac: '02:42:0a:00:09:04' }] };
    expect(planOverlayV6(done, desired)).toEqual([]);
    const stale = { ...done, neighbors: [...done.neighbors, { ip: 'fd00:9::5', mac: '02:42:0a:00:09:05' }] };
    expect(planOverlayV6(stale, desired)).toEqual([{ op: 'deleteNeighbor6', ip: 'fd00:9::5' }]);
    const moved = { ...done, neighbors: [{ ip: 'fd00:9::4', mac: '02:42:0a:00:09:99' }], sandboxCidrs: { '/run/x/t1': { eth0: ['fd00:9::7/64'] } } };
    expect(planOverlayV6(moved, desired)).toEqual([
      { op: 'replaceNeighbor6', ip: 'fd00:9::4', mac: '02:42:0a:00:09:04' },
      { op: 'deleteAddress6', sandbox: '/run/x/t1', ifname: 'eth0', cidr: 'fd00:9::7/64' },
      { op: 'replaceAddress6', sandbox: '/run/x/t1', ifname: 'eth0', cidr: 'fd00:9::3/64' },
    ]);
  });
});
