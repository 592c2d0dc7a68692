import { describe, expect, it } from 'vitest';
import { renderIp6Table } from '../vip/nft/ip6-table.js';
import type { VirtualService } from '../vip/lb-table.js';
import { publishedEntry6 } from './sbox-table6.js';

const front = { address: 'fd6d:6777:6272::2', protocol: 'tcp' as const, port: 8080 };
const svc = (backends: VirtualService['backends'], extra: Partial<VirtualService> = {}): VirtualService => ({
  id: 'ingress6-tcp-8080', frontend: { kind: 'fwmark', mark: 8336, ...front }, scheduler: 'rr', sourceNat: 'fd00:ff::2', backends, ...extra,
});

describe('publishedEntry6: a published port in the sandbox\'s ip6 meshnet6 table', () => {
  it('reads the table as nft lists it (tcp dport, addr . port map entries) with its SNAT', () => {
    // Verbatim from `nft list table ip6 meshnet6` after loading renderIp6Table's output in a scratch namespace.
    const listed = [
      'table ip6 meshnet6 {',
      '\tchain postrouting {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t\tct original ip6 daddr fd6d:6777:6272::2 meta l4proto tcp ct original proto-dst 8080 ct status dnat snat to fd00:ff::2',
      '\t}',
      '',
      '\tchain dispatch {',
      '\t\tip6 daddr fd6d:6777:6272::2 tcp dport 8080 dnat ip6 to numgen inc mod 2 map { 0 : fd00:ff::7 . 80, 1 : fd00:ff::8 . 80 }',
      '\t\tip6 daddr fd6d:6777:6272::2 tcp dport 8081 dnat to [fd00:ff::7]:80',
      '\t\tip6 daddr fd6d:6777:6272::2 udp dport 53 reject',
      '\t}',
      '}',
    ].join('\n');
    expect(publishedEntry6(listed, front)).toEqual({
      rule: 'ip6 daddr fd6d:6777:6272::2 tcp dport 8080 dnat ip6 to numgen inc mod 2 map { 0 : fd00:ff::7 . 80, 1 : fd00:ff::8 . 80 }',
      verdict: 'dnat',
      slots: [{ address: 'fd00:ff::7', port: 80 }, { address: 'fd00:ff::8', port: 80 }],
      snat: { to: 'fd00:ff::2', rule: 'ct original ip6 daddr fd6d:6777:6272::2 meta l4proto tcp ct original proto-dst 8080 ct status dnat snat to fd00:ff::2' },
    });
    expect(publishedEntry6(listed, { ...front, port: 8081 })).toMatchObject({ slots: [{ address: 'fd00:ff::7', port: 80 }] });
    expect(publishedEntry6(listed, { ...front, port: 8081 })!.snat).toBeUndefined();
    expect(publishedEntry6(listed, { ...front, protocol: 'udp', port: 53 })).toMatchObject({ verdict: 'reject', slots: [] });
    expect(publishedEntry6(listed, { ...front, port: 9999 })).toBeNull();
    expect(publishedEntry6(listed, { ...front, address: 'fd6d:6777:6272::9' })).toBeNull();
  });

  it('reads the rendered form too, weights as repeated slots, and affinity through its per-backend chains', () => {
    const weighted = renderIp6Table([svc([{ address: 'fd00:ff::7', port: 80, weight: 2 }, { address: 'fd00:ff::8', port: 80, weight: 1 }, { address: 'fd00:ff::9', port: 80, weight: 0 }], { scheduler: 'wrr' })]);
    expect(publishedEntry6(weighted, front)!.slots.map((s) => s.address)).toEqual(['fd00:ff::7', 'fd00:ff::7', 'fd00:ff::8']);
    const sticky = renderIp6Table([svc([{ address: 'fd00:ff::7', port: 80, weight: 1 }, { address: 'fd00:ff::8', port: 80, weight: 1 }], { persistenceSeconds: 60 })]);
    expect(publishedEntry6(sticky, front)!.slots).toEqual([{ address: 'fd00:ff::7', port: 80 }, { address: 'fd00:ff::8', port: 80 }]);
  });
});
