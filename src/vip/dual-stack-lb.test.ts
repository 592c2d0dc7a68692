import { describe, expect, test } from 'vitest';
import { DualStackLb, type Ip6TableIo } from './dual-stack-lb.js';
import type { LbBackend, LbTable, VirtualService } from './lb-table.js';

const v4: VirtualService = { id: 'a', frontend: { kind: 'vip', address: '10.0.1.2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [] };
const v6: VirtualService = { id: 'b', frontend: { kind: 'vip', address: 'fd00:9::2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [{ address: 'fd00:9::3', port: 0, weight: 1 }] };

function setup(tableThere: boolean) {
  const scripts: string[] = [];
  const seen: LbTable[] = [];
  let reads = 0;
  const io: Ip6TableIo = { run: async (s) => void scripts.push(s), exists: async () => (reads++, tableThere), close: () => undefined };
  const inner = { kind: 'nft', apply: async (t: LbTable) => (seen.push(t), { changes: 0, durationMs: 0 }), reconcile: async (t: LbTable) => (seen.push(t), { changes: 0, durationMs: 0 }) } as unknown as LbBackend;
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
