import { describe, expect, it } from 'vitest';
import type { LbTable } from '../lb-table.js';
import { conntrackDeleteArgv, staleConntrackDeletions } from './stale-conntrack.js';

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

describe('staleConntrackDeletions', () => {
  it('deletes the entries of a UDP backend that left, by VIP:port and reply source', () => {
    const d = staleConntrackDeletions(udp([['10.0.1.1', 1], ['10.0.1.2', 1]]), udp([['10.0.1.1', 1]]));
    expect(d).toEqual([{ protocol: 'udp', origDst: '10.0.0.4', origPortDst: 53, replySrc: '10.0.1.2', replyPortSrc: 5353 }]);
    expect(conntrackDeleteArgv(d[0]!)).toEqual(['conntrack', '-D', '-p', 'udp', '--orig-dst', '10.0.0.4', '--orig-port-dst', '53', '--reply-src', '10.0.1.2', '--reply-port-src', '5353']);
  });

  it('keeps the entries of a draining backend (weight 0) until it is removed', () => {
    expect(staleConntrackDeletions(udp([['10.0.1.1', 1], ['10.0.1.2', 1]]), udp([['10.0.1.1', 1], ['10.0.1.2', 0]]))).toEqual([]);
  });

  it('clears un-NATed entries when a UDP service gets its first backend', () => {
    expect(staleConntrackDeletions(udp([]), udp([['10.0.1.1', 1]]))).toEqual([
      { protocol: 'udp', origDst: '10.0.0.4', origPortDst: 53, replySrc: '10.0.0.4', replyPortSrc: 53 },
    ]);
  });

  it("deletes only half-open (SYN_SENT) attempts to a published port's TCP backend that left, not at weight 0", () => {
    const published = (backends: [string, number][]): LbTable => ({
      services: [
        { id: 'ingress-tcp-8000', frontend: { kind: 'fwmark', mark: 8256, protocol: 'tcp', port: 8000, address: '172.18.0.2' }, scheduler: 'rr', backends: backends.map(([address, weight]) => ({ address, port: 0, weight })) },
      ],
    });
    const gone = staleConntrackDeletions(published([['10.255.0.3', 1], ['10.255.0.4', 1]]), published([['10.255.0.3', 1]]));
    expect(gone).toEqual([{ protocol: 'tcp', state: 'SYN_SENT', origPortDst: 8000, replySrc: '10.255.0.4', replyPortSrc: 8000 }]);
    expect(conntrackDeleteArgv(gone[0]!)).toEqual(['conntrack', '-D', '-p', 'tcp', '--state', 'SYN_SENT', '--orig-port-dst', '8000', '--reply-src', '10.255.0.4', '--reply-port-src', '8000']);
    expect(staleConntrackDeletions(published([['10.255.0.3', 1], ['10.255.0.4', 1]]), published([['10.255.0.3', 1], ['10.255.0.4', 0]]))).toEqual([]);
  });

  it('leaves TCP VIPs alone (east-west), and the first sync', () => {
    expect(staleConntrackDeletions(null, udp([['10.0.1.1', 1]]))).toEqual([]);
    const tcpGone: LbTable = { services: [{ ...udp([])!.services[1]!, backends: [{ address: '10.0.1.1', port: 80, weight: 1 }] }] };
    expect(staleConntrackDeletions(tcpGone, { services: [] })).toEqual([]);
  });
});
