import { describe, expect, test } from 'vitest';
import type { VirtualService } from '../lb-table.js';
import { ip6ServiceRules, renderIp6Table, splitByFamily } from './ip6-table.js';
import { traceIp6 } from './ip6-tracer.js';

const services: VirtualService[] = [
  { id: 'web-x-tcp0', frontend: { kind: 'vip', address: 'fd00:9::2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [{ address: 'fd00:9::4', port: 0, weight: 1 }, { address: 'fd00:9::3', port: 0, weight: 1 }, { address: 'fd00:9::5', port: 0, weight: 0 }] },
  { id: 'web-x-udp0', frontend: { kind: 'vip', address: 'fd00:9::2', protocol: 'udp', port: 0 }, scheduler: 'wrr', backends: [{ address: 'fd00:9::3', port: 0, weight: 2 }] },
  { id: 'pub-tcp8000', frontend: { kind: 'fwmark', mark: 256, address: 'fd00:ff::2', protocol: 'tcp', port: 8000 }, scheduler: 'rr', sourceNat: 'fd00:ff::5', backends: [{ address: 'fd00:ff::7', port: 80, weight: 1 }] },
  { id: 'none-tcp0', frontend: { kind: 'vip', address: 'fd00:9::9', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [] },
];

describe('the ip6 meshnet6 table', () => {
  test('v4 services stay in the v4 table untouched; only v6 ones move', () => {
    const v4: VirtualService = { id: 'a', frontend: { kind: 'vip', address: '10.0.1.2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [] };
    const only4 = { services: [v4] };
    expect(splitByFamily(only4)).toEqual({ v4: only4, v6: [] });
    expect(splitByFamily({ services: [v4, ...services] }).v6).toHaveLength(4);
  });

  test('renders one dispatch rule per service (golden)', () => {
    expect(ip6ServiceRules(services[0]!)).toEqual(['ip6 daddr fd00:9::2 meta l4proto tcp dnat to numgen inc mod 2 map { 0 : fd00:9::3, 1 : fd00:9::4 }']);
    expect(ip6ServiceRules(services[1]!)).toEqual(['ip6 daddr fd00:9::2 meta l4proto udp dnat to fd00:9::3']);
    expect(ip6ServiceRules(services[3]!)).toEqual(['ip6 daddr fd00:9::9 meta l4proto tcp reject']);
    const script = renderIp6Table(services);
    expect(script).toContain('ip6 daddr fd00:ff::2 meta l4proto tcp th dport 8000 dnat to [fd00:ff::7]:80');
    expect(script).toContain('ct original ip6 daddr fd00:ff::2 meta l4proto tcp ct original proto-dst 8000 ct status dnat snat to fd00:ff::5');
    expect(renderIp6Table([])).toBe('add table ip6 meshnet6\ndelete table ip6 meshnet6\n');
  });

  test('a published port over several backends names its target port as a concatenation under dnat ip6 to', () => {
    const pub: VirtualService = { ...services[2]!, backends: [{ address: 'fd00:ff::8', port: 80, weight: 1 }, { address: 'fd00:ff::7', port: 80, weight: 1 }] };
    expect(ip6ServiceRules(pub)).toEqual([
      'ip6 daddr fd00:ff::2 meta l4proto tcp th dport 8000 dnat ip6 to numgen inc mod 2 map { 0 : fd00:ff::7 . 80, 1 : fd00:ff::8 . 80 }',
      '# snat pub-tcp8000 fd00:ff::5',
    ]);
  });

  test('weights keep their ratio past 16 (the v4 table\'s slot shares), and unweighted schedulers ignore them', () => {
    const svc = (scheduler: VirtualService['scheduler']): VirtualService => ({
      id: 'w', frontend: { kind: 'vip', address: 'fd00:9::2', protocol: 'tcp', port: 0 }, scheduler,
      backends: [{ address: 'fd00:9::3', port: 0, weight: 1 }, { address: 'fd00:9::4', port: 0, weight: 40 }],
    });
    const slots = (rule: string) => [...rule.matchAll(/: (fd00:9::\d)/g)].map((m) => m[1]);
    const wrr = slots(ip6ServiceRules(svc('wrr'))[0]!);
    expect(wrr).toHaveLength(41);
    expect(wrr.filter((a) => a === 'fd00:9::4')).toHaveLength(40);
    expect(slots(ip6ServiceRules(svc('rr'))[0]!)).toEqual(['fd00:9::3', 'fd00:9::4']);
  });

  test('--lb-affinity: a known client returns to its backend through per-backend timeout sets', () => {
    const sticky: VirtualService = { ...services[0]!, id: 'sticky', persistenceSeconds: 300 };
    const script = renderIp6Table([sticky]);
    expect(script).toContain('set a0_0 { type ipv6_addr; flags dynamic,timeout; timeout 300s; size 65535; }');
    expect(script).toContain('ip6 daddr fd00:9::2 meta l4proto tcp goto s0');
    expect(script).toContain('\tchain s0 {\n\t\tip6 saddr @a0_0 goto b0_0\n\t\tip6 saddr @a0_1 goto b0_1\n\t\tnumgen inc mod 2 vmap { 0 : goto b0_0, 1 : goto b0_1 }\n\t}');
    expect(script).toContain('\tchain b0_1 {\n\t\tupdate @a0_1 { ip6 saddr }\n\t\tdnat to fd00:9::4\n\t}');
    expect(traceIp6(script, { saddr: 'fd00:9::7', daddr: 'fd00:9::2', protocol: 'tcp', dport: 80 })).toEqual({ kind: 'dnat', targets: ['fd00:9::3', 'fd00:9::4'] });
  });

  test('the tracer follows the rendered rules: VIP to live backends, published port, reject, and not ours', () => {
    const script = renderIp6Table(services);
    const p = { saddr: 'fd00:9::7', protocol: 'tcp' as const, dport: 443 };
    expect(traceIp6(script, { ...p, daddr: 'fd00:9:0::2' })).toEqual({ kind: 'dnat', targets: ['fd00:9::3', 'fd00:9::4'] });
    expect(traceIp6(script, { ...p, daddr: 'fd00:ff::2', dport: 8000 })).toEqual({ kind: 'dnat', targets: ['[fd00:ff::7]:80'] });
    expect(traceIp6(script, { ...p, daddr: 'fd00:ff::2', dport: 8001 })).toEqual({ kind: 'accept' });
    expect(traceIp6(script, { ...p, daddr: 'fd00:9::9' })).toEqual({ kind: 'reject' });
    expect(traceIp6(renderIp6Table([]), { ...p, daddr: 'fd00:9::2' })).toEqual({ kind: 'accept' });
  });
});
