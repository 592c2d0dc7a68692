import { describe, expect, test } from 'vitest';
import { DualStackLb, routeByBackend, type Ip6TableIo } from './dual-stack-lb.js';
import type { LbBackend, LbTable, VirtualService } from './lb-table.js';

const v4: VirtualService = { id: 'a', frontend: { kind: 'vip', address: '10.0.1.2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [] };
const v6: VirtualService = { id: 'b', frontend: { kind: 'vip', address: 'fd00:9::2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [{ address: 'fd00:9::3', port: 0, weight: 1 }] };

function setup(tableThere: boolean, kind: LbBackend['kind'] = 'nftables') {
  const scripts: string[] = [];
  const seen: LbTable[] = [];
  let reads = 0;
  const io: Ip6TableIo = { run: async (s) => void scripts.push(s), exists: async () => (reads++, tableThere), close: () => undefined };
  const inner = { kind, apply: async (t: LbTable) => (seen.push(t), { changes: 0, durationMs: 0 }), reconcile: async (t: LbTable) => (seen.push(t), { changes: 0, durationMs: 0 }) } as unknown as LbBackend;
  return { lb: new DualStackLb(inner, '/run/x', io), scripts, seen, reads: () => reads };
}

describe('the dual-stack backend', () => {
  test('a v4-only namespace gets no v6 write, and is looked at once', async () => {
    const { lb, scripts, seen, reads } = setup(false);
    await lb.reconcile({ services: [v4] });
    await lb.reconcile({ services: [v4] });
    await lb.apply({ services: [v4] });
    expect(scripts).toEqual([]);
    expect(reads()).toBe(1);
    expect(seen.every((t) => t.services.length === 1 && t.services[0] === v4)).toBe(true);
  });

  test('a meshnet6 table an earlier agent left is removed on the first kernel re-read', async () => {
    const { lb, scripts } = setup(true);
    await lb.reconcile({ services: [v4] });
    expect(scripts).toEqual(['add table ip6 meshnet6\ndelete table ip6 meshnet6\n']);
    await lb.reconcile({ services: [v4] });
    expect(scripts).toHaveLength(1);
  });

  test('the v6 table is written on change only and removed with the last v6 service', async () => {
    const { lb, scripts } = setup(false);
    await lb.apply({ services: [v4, v6] });
    await lb.apply({ services: [v4, v6] });
    expect(scripts).toHaveLength(1);
    expect(scripts[0]).toContain('ip6 daddr fd00:9::2 meta l4proto tcp dnat to fd00:9::3');
    await lb.apply({ services: [v4] });
    expect(scripts[1]).toBe('add table ip6 meshnet6\ndelete table ip6 meshnet6\n');
    await lb.apply({ services: [v4] });
    expect(scripts).toHaveLength(2);
  });
});

describe('v6 services on an IPVS node', () => {
  const pub6: VirtualService = { id: 'ingress6-tcp-8080', frontend: { kind: 'fwmark', mark: 256, address: 'fd6d:6777:6272::2', protocol: 'tcp', port: 8080 }, scheduler: 'rr', sourceNat: 'fd00:ff::2', backends: [{ address: 'fd00:ff::7', port: 80, weight: 1 }] };

  test('IPVS serves the v6 VIPs; v6 published ports stay in meshnet6 (their SNAT is there); nftables keeps every v6 service in meshnet6', () => {
    const table: LbTable = { services: [v4, v6, pub6] };
    expect(routeByBackend(table, 'ipvs')).toEqual({ inner: { services: [v4, v6] }, ip6: [pub6] });
    expect(routeByBackend(table, 'nftables')).toEqual({ inner: { services: [v4] }, ip6: [v6, pub6] });
    // Nothing for meshnet6: the table itself goes on, as a v4-only one always did.
    const vipsOnly: LbTable = { services: [v4, v6] };
    expect(routeByBackend(vipsOnly, 'ipvs').inner).toBe(vipsOnly);
    const v4Only: LbTable = { services: [v4] };
    expect(routeByBackend(v4Only, 'ipvs')).toEqual({ inner: v4Only, ip6: [] });
  });

  test('the v6 VIP reaches the IPVS backend and meshnet6 is never written; a meshnet6 table an nftables agent left is removed once', async () => {
    const { lb, scripts, seen, reads } = setup(true, 'ipvs');
    await lb.reconcile({ services: [v4, v6] });
    await lb.reconcile({ services: [v4, v6] });
    await lb.apply({ services: [v4, v6] });
    expect(seen.map((t) => t.services.map((s) => s.id))).toEqual([['a', 'b'], ['a', 'b'], ['a', 'b']]);
    expect(scripts).toEqual(['add table ip6 meshnet6\ndelete table ip6 meshnet6\n']);
    expect(reads()).toBe(1);
  });
});
