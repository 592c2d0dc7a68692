import { describe, expect, it } from 'vitest';
import { NftParseError } from './errors.js';
import { parseRuleset, tracePacket, type TracePacket } from './packet-tracer.js';
import { renderLbTable } from './render.js';
import { SAMPLE_TABLE } from './sample-table.fixture.js';

const ruleset = parseRuleset(renderLbTable(SAMPLE_TABLE));
const fromTask = (dst: string, dport: number, proto: 'tcp' | 'udp' = 'tcp'): TracePacket => ({ src: '10.0.9.9', dst, dport, proto, path: 'output' });

describe('packet tracer on the rendered sample table', () => {
  it('balances a VIP hit over the selectable backends, evenly for rr', () => {
    const r = tracePacket(ruleset, fromTask('10.0.0.2', 80));
    expect(r.verdict).toBe('accept');
    expect(r.serviceChain).toBe('vip-tcp-inc-2');
    expect(r.candidates).toEqual([
      { address: '10.0.1.1', port: 8080, share: 0.5 },
      { address: '10.0.1.3', port: 8080, share: 0.5 },
    ]);
    expect(r.unmapped).toBe(0);
    expect(r.snat).toBeUndefined(); // east-west keeps the client address
  });

  it('never chooses a weight-0 backend for a new connection', () => {
    const r = tracePacket(ruleset, fromTask('10.0.0.2', 80));
    expect(r.candidates.map((c) => c.address)).not.toContain('10.0.1.2');
  });

  it('misses on the wrong port or protocol: no DNAT, no reject', () => {
    for (const p of [fromTask('10.0.0.2', 81), fromTask('10.0.0.2', 80, 'udp'), fromTask('10.0.0.99', 80)]) {
      const r = tracePacket(ruleset, p);
      expect(r).toMatchObject({ verdict: 'accept', candidates: [] });
      expect(r.serviceChain).toBeUndefined();
    }
  });

  it('splits wrr by weight', () => {
    const r = tracePacket(ruleset, fromTask('10.0.0.3', 443));
    expect(r.candidates).toEqual([
      { address: '10.0.1.1', port: 8443, share: 1 / 3 },
      { address: '10.0.1.3', port: 8443, share: 2 / 3 },
    ]);
  });

  it('checks and refreshes affinity, and a known client goes straight to its backend', () => {
    const fresh = tracePacket(ruleset, fromTask('10.0.0.4', 53, 'udp'));
    expect(fresh.serviceChain).toBe('svc-dns');
    expect(fresh.affinitySets.sort()).toEqual(['aff-dns/10.0.1.1/53', 'aff-dns/10.0.1.3/53']); // not the draining one
    expect(fresh.candidates.map((c) => [c.address, c.share])).toEqual([
      ['10.0.1.1', 0.25],
      ['10.0.1.3', 0.75],
    ]);
    expect(fresh.affinityUpdates.sort()).toEqual(['aff-dns/10.0.1.1/53', 'aff-dns/10.0.1.3/53']);
    const known = tracePacket(ruleset, { ...fromTask('10.0.0.4', 53, 'udp'), knownInSets: ['aff-dns/10.0.1.3/53'] });
    expect(known.candidates).toEqual([{ address: '10.0.1.3', port: 53, share: 1 }]);
  });

  it('rejects new connections to a service without backends at once: TCP reset, UDP port unreachable', () => {
    const r = tracePacket(ruleset, fromTask('10.0.0.5', 80));
    expect(r).toMatchObject({ verdict: 'reject', rejectWith: 'tcp reset', serviceChain: 'no-backend', candidates: [] });
    // Only its own VIP:port: port 81 on the same address is left alone.
    expect(tracePacket(ruleset, fromTask('10.0.0.5', 81)).verdict).toBe('accept');
    const ingress = tracePacket(ruleset, { src: '192.168.1.50', dst: '192.168.1.1', dport: 9000, proto: 'udp', path: 'prerouting', localAddresses: ['192.168.1.1'] });
    expect(ingress).toMatchObject({ verdict: 'reject', rejectWith: 'icmp port-unreachable', mark: 257 });
  });

  it('marks published ports on local addresses in prerouting and balances them as the fwmark service with source NAT', () => {
    const pkt: TracePacket = { src: '192.168.1.50', dst: '172.18.0.2', dport: 8080, proto: 'tcp', path: 'prerouting', localAddresses: ['172.18.0.2'] };
    const r = tracePacket(ruleset, pkt);
    expect(r.mark).toBe(256);
    expect(r.serviceChain).toBe('mark-tcp-random-2');
    expect(r.candidates).toEqual([
      { address: '10.255.0.5', port: 8080, share: 0.5 }, // port 0 = the published port
      { address: '10.255.0.6', port: 80, share: 0.5 },
    ]);
    expect(r.snat).toBe('10.255.0.2');
    expect(r.chains.slice(0, 2)).toEqual(['mangle-prerouting', 'nat-prerouting']);
    // The same port on an address that is not local is not published.
    expect(tracePacket(ruleset, { ...pkt, localAddresses: [] }).candidates).toEqual([]);
  });

  it('applies per-service source NAT after DNAT', () => {
    expect(tracePacket(ruleset, fromTask('10.0.0.6', 80)).snat).toBe('10.0.0.1');
  });

  it('refuses rules outside the subset it understands', () => {
    const text = renderLbTable({ services: [] }).replaceAll('jump services', 'ip saddr 1.2.3.4 drop');
    expect(() => tracePacket(text, fromTask('10.0.0.2', 80))).toThrow(NftParseError);
  });
});
