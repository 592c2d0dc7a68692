import { describe, expect, it } from 'vitest';
import { desiredOverlayState } from './overlay-state.js';
import type { OverlayInput } from './overlay-spec.js';
import { InvalidSandboxInputError } from '../sandbox/errors.js';

// The overlay over a v6 underlay (issue 14): the VTEPs are v6, the MTU loses 70 bytes, and what cannot work is refused.
const v6 = (): OverlayInput => ({
  network: { name: 'appnet', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' },
  underlayMtu: 1500,
  localVtep: '2001:DB8::1',
  local: [{ id: 'web.1', sandbox: '/run/x/t1', ifname: 'eth0', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' }],
  remote: [
    { ip: '10.0.1.9', mac: '02:42:0a:00:01:09', vtep: '2001:db8:0::3' },
    { ip: '10.0.1.10', mac: '02:42:0a:00:01:0a', vtep: '2001:db8::2' },
  ],
});

describe('desiredOverlayState over a v6 underlay', () => {
  it('sets a v6 local on vxlan0 and takes 70 bytes off the underlay MTU for every device', () => {
    const s = desiredOverlayState(v6());
    expect(s.vxlan).toEqual({ name: 'vxlan0', vni: 4096, port: 4789, mtu: 1430, learning: false, proxy: true, local: '2001:db8::1' });
    expect(s.bridge.mtu).toBe(1430);
    expect(s.endpoints[0]!.mtu).toBe(1430);
  });

  it('writes each peer\'s VTEP in canonical text, as the FDB reads it back', () => {
    expect(desiredOverlayState(v6()).peers.map((p) => p.vtep)).toEqual(['2001:db8::3', '2001:db8::2']);
  });

  it('needs 646 bytes of underlay MTU, 20 more than over v4', () => {
    expect(() => desiredOverlayState({ ...v6(), underlayMtu: 645 })).toThrow(/at least 646/);
    expect(desiredOverlayState({ ...v6(), underlayMtu: 646 }).vxlan.mtu).toBe(576);
    expect(desiredOverlayState({ ...v6(), localVtep: '192.0.2.1', remote: [], underlayMtu: 626 }).vxlan.mtu).toBe(576);
  });

  it('refuses a peer on an underlay of the other family, naming both addresses and the fix', () => {
    const mixed = v6();
    mixed.remote[1]!.vtep = '192.0.2.2';
    expect(() => desiredOverlayState(mixed)).toThrow(InvalidSandboxInputError);
    expect(() => desiredOverlayState(mixed)).toThrow(/IPv4 underlay \(192\.0\.2\.2\) but this node's is IPv6.*same family/);
    const mixed4 = { ...v6(), localVtep: '192.0.2.1' };
    expect(() => desiredOverlayState(mixed4)).toThrow(/IPv6 underlay \(2001:db8:0::3\) but this node's is IPv4/);
  });

  it('refuses an encrypted network rather than carry it in cleartext, and builds it over v4', () => {
    expect(() => desiredOverlayState({ ...v6(), encrypted: true })).toThrow(/network appnet is encrypted.*IPv6 \(2001:DB8::1\).*without --opt encrypted/);
    const v4 = { ...v6(), localVtep: '192.0.2.1', encrypted: true, remote: [{ ip: '10.0.1.9', mac: '02:42:0a:00:01:09', vtep: '192.0.2.3' }] };
    expect(desiredOverlayState(v4).vxlan.local).toBe('192.0.2.1');
  });

  it('refuses a local VTEP no other host can reach', () => {
    expect(() => desiredOverlayState({ ...v6(), localVtep: 'fe80::1' })).toThrow(/local VTEP: fe80::1 is a link-local address/);
  });
});
