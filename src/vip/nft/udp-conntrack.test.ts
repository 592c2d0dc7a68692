import { describe, expect, it } from 'vitest';
import type { LbTable } from '../lb-table.js';
import { conntrackDeleteArgv, udpConntrackDeletions } from './udp-conntrack.js';

const udp = (backends: [string, number][]): LbTable => ({
  services: [
    {
      id: 'dns',
      frontend: { kind: 'vip', address: '10.0.0.4', protocol: 'udp', port: 53 },
      scheduler: 'rr',
      backends: backends.map(([address, weight]) => ({ address, port: 5353, weight })),
    },
    { id: 'web', frontend: { kind: 'vip', address: '10.0.0.2', protocol: 'tcp', port: 80 }, scheduler: 'rr', backends: [] },
  ],
});

describe('udpConntrackDeletions', () => {
  it('deletes the entries of a UDP backend that left, by VIP:port and reply source', () => {
    const d = udpConntrackDeletions(udp([['10.0.1.1', 1], ['10.0.1.2', 1]]), udp([['10.0.1.1', 1]]));
    expect(d).toEqual([{ protocol: 'udp', origDst: '10.0.0.4', origPortDst: 53, replySrc: '10.0.1.2', replyPortSrc: 5353 }]);
    expect(conntrackDeleteArgv(d[0]!)).toEqual(['conntrack', '-D', '-p', 'udp', '--orig-dst', '10.0.0.4', '--orig-port-dst', '53', '--reply-src', '10.0.1.2', '--reply-port-src', '5353']);
  });

  it('keeps the entries of a draining backend (weight 0) until it is removed', () => {
    expect(udpConntrackDeletions(udp([['10.0.1.1', 1], ['10.0.1.2', 1]]), udp([['10.0.1.1', 1], ['10.0.1.2', 0]]))).toEqual([]);
  });

  it('clears un-NATed entries when a UDP service gets its first backend', () => {
    expect(udpConntrackDeletions(udp([]), udp([['10.0.1.1', 1]]))).toEqual([
      { protocol: 'udp', origDst: '10.0.0.4', origPortDst: 53, replySrc: '10.0.0.4', replyPortSrc: 53 },
    ]);
  });

  it('ignores TCP services and the first sync', () => {
    expect(udpConntrackDeletions(null, udp([['10.0.1.1', 1]]))).toEqual([]);
    const tcpGone: LbTable = { services: [{ ...udp([])!.services[1]!, backends: [{ address: '10.0.1.1', port: 80, weight: 1 }] }] };
    expect(udpConntrackDeletions(tcpGone, { services: [] })).toEqual([]);
  });
});
