import { describe, expect, it } from 'vitest';
import type { LbTable } from '../lb-table.js';
import { parseRuleset, tracePacket, type TracePacket } from './packet-tracer.js';
import { renderLbTable } from './render.js';
import { InvalidLbTableError } from './errors.js';

// Swarm's VIP forwards every port: a frontend with port 0 keeps the connection's destination port.
const table: LbTable = {
  services: [
    {
      id: 'api-any',
      frontend: { kind: 'vip', address: '10.0.7.2', protocol: 'tcp', port: 0 },
      scheduler: 'rr',
      backends: [
        { address: '10.0.7.11', port: 0, weight: 1 },
        { address: '10.0.7.12', port: 0, weight: 1 },
        { address: '10.0.7.13', port: 0, weight: 0 },
      ],
    },
    {
      id: 'api-admin',
      frontend: { kind: 'vip', address: '10.0.7.2', protocol: 'tcp', port: 9000 },
      scheduler: 'rr',
      backends: [{ address: '10.0.7.11', port: 9090, weight: 1 }],
    },
    { id: 'idle-any', frontend: { kind: 'vip', address: '10.0.7.3', protocol: 'udp', port: 0 }, scheduler: 'rr', backends: [] },
    {
      id: 'sticky-any',
      frontend: { kind: 'vip', address: '10.0.7.4', protocol: 'tcp', port: 0 },
      scheduler: 'rr',
      persistenceSeconds: 60,
      backends: [{ address: '10.0.7.21', port: 0, weight: 1 }],
    },
  ],
};
const rs = parseRuleset(renderLbTable(table));
const pkt = (dst: string, dport: number, proto: 'tcp' | 'udp' = 'tcp'): TracePacket => ({ src: '10.0.7.50', dst, dport, proto, path: 'output' });

describe('every-port VIPs (frontend port 0)', () => {
  it('balance any destination port over the selectable backends, keeping the port', () => {
    for (const port of [80, 3000, 65535]) {
      const r = tracePacket(rs, pkt('10.0.7.2', port));
      expect(r.serviceChain).toBe('vipany-tcp-inc-2');
      expect(r.candidates).toEqual([
        { address: '10.0.7.11', port, share: 0.5 },
        { address: '10.0.7.12', port, share: 0.5 },
      ]);
    }
  });

  it('let a port-specific frontend of the same VIP take precedence', () => {
    expect(tracePacket(rs, pkt('10.0.7.2', 9000)).candidates).toEqual([{ address: '10.0.7.11', port: 9090, share: 1 }]);
  });

  it('do not catch the other protocol, and refuse new connections when no backend is selectable', () => {
    expect(tracePacket(rs, pkt('10.0.7.2', 80, 'udp')).candidates).toEqual([]);
    expect(tracePacket(rs, pkt('10.0.7.3', 53, 'udp'))).toMatchObject({ verdict: 'reject', rejectWith: 'icmp port-unreachable' });
  });

  it('keep affinity with address-only DNAT', () => {
    const r = tracePacket(rs, pkt('10.0.7.4', 8443));
    expect(r.candidates).toEqual([{ address: '10.0.7.21', port: 8443, share: 1 }]);
    expect(r.affinityUpdates).toHaveLength(1);
  });

  it('are rejected with a backend port or source NAT, which cannot mean anything for every port', () => {
    const withPort: LbTable = { services: [{ ...table.services[0]!, backends: [{ address: '10.0.7.11', port: 80, weight: 1 }] }] };
    expect(() => renderLbTable(withPort)).toThrow(InvalidLbTableError);
    expect(() => renderLbTable(withPort)).toThrow(/must have port 0/);
    expect(() => renderLbTable({ services: [{ ...table.services[0]!, sourceNat: '10.0.7.1' }] })).toThrow(/cannot have sourceNat/);
  });
});
