import { describe, expect, it } from 'vitest';
import type { LbTable, VirtualService } from '../lb-table.js';
import { EVERY_PORT_MARK_BASE, everyPortMark, everyPortMarks, ipvsStateFromTable, planIpvs, validateLbTable, type IpvsState } from './ipvs-plan.js';
import { renderRestore } from '../../mesh/iptables-render.js';
import { parseIptablesSave } from '../../mesh/iptables-save-parse.js';
import { markRulesByFamily, markRulesFromState, markRulesFromTable, markRuleSet } from './mark-rules.js';

const web: VirtualService = {
  id: 'web',
  frontend: { kind: 'vip', address: '10.0.0.10', protocol: 'tcp', port: 80 },
  scheduler: 'rr',
  backends: [
    { address: '10.0.1.2', port: 0, weight: 1 },
    { address: '10.0.1.3', port: 8080, weight: 1 },
  ],
};
const ingress: VirtualService = {
  id: 'ingress-web',
  frontend: { kind: 'fwmark', mark: 256, protocol: 'tcp', port: 8080 },
  scheduler: 'random',
  persistenceSeconds: 600,
  backends: [{ address: '10.255.0.5', port: 0, weight: 2 }],
};

describe('ipvsStateFromTable', () => {
  it('maps vip and fwmark frontends, port 0, random -> rr, persistence and masq', () => {
    expect(ipvsStateFromTable({ services: [web, ingress] })).toEqual({
      services: [
        {
          service: { key: { kind: 'vip', family: 'inet', protocol: 'tcp', address: '10.0.0.10', port: 80 }, scheduler: 'rr', flags: 0, timeout: 0, netmaskPrefix: 32 },
          dests: [
            { family: 'inet', address: '10.0.1.2', port: 80, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
            { family: 'inet', address: '10.0.1.3', port: 8080, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
          ],
        },
        {
          service: { key: { kind: 'fwmark', family: 'inet', fwmark: 256 }, scheduler: 'rr', flags: 1, timeout: 600, netmaskPrefix: 32 },
          dests: [{ family: 'inet', address: '10.255.0.5', port: 0, forward: 'masq', weight: 2, upperThreshold: 0, lowerThreshold: 0 }],
        },
      ],
    });
  });

  it('uses IPv6 keys and canonical addresses for IPv6 services', () => {
    const s = ipvsStateFromTable({
      services: [{ id: 'v6', frontend: { kind: 'vip', address: 'FD00:0::10', protocol: 'udp', port: 53 }, scheduler: 'sh', backends: [{ address: 'fd00:0:0::2', port: 0, weight: 1 }] }],
    });
    expect(s.services[0]!.service.key).toEqual({ kind: 'vip', family: 'inet6', protocol: 'udp', address: 'fd00::10', port: 53 });
    expect(s.services[0]!.service.netmaskPrefix).toBe(128);
    expect(s.services[0]!.dests[0]!.address).toBe('fd00::2');
  });
});

describe('planIpvs', () => {
  const desired = ipvsStateFromTable({ services: [web, ingress] });

  it('creates everything from nothing: services first, then destinations', () => {
    const ops = planIpvs({ services: [] }, desired);
    expect(ops.map((o) => o.op)).toEqual(['addService', 'addService', 'addDest', 'addDest', 'addDest']);
  });

  it('is empty when the kernel already matches', () => {
    expect(planIpvs(desired, desired)).toEqual([]);
  });

  it('drains with weight 0, removes dropped backends, updates schedulers, deletes services last', () => {
    const current: IpvsState = structuredClone(desired);
    const table: LbTable = {
      services: [
        { ...web, scheduler: 'wrr', backends: [{ address: '10.0.1.2', port: 0, weight: 0 }, { address: '10.0.1.4', port: 0, weight: 5 }] },
      ],
    };
    const ops = planIpvs(current, ipvsStateFromTable(table));
    const key = desired.services[0]!.service.key;
    expect(ops).toEqual([
      { op: 'updateService', service: { ...desired.services[0]!.service, scheduler: 'wrr' } },
      { op: 'updateDest', service: key, dest: { ...desired.services[0]!.dests[0]!, weight: 0 } },
      { op: 'addDest', service: key, dest: { family: 'inet', address: '10.0.1.4', port: 80, forward: 'masq', weight: 5, upperThreshold: 0, lowerThreshold: 0 } },
      { op: 'deleteDest', service: key, dest: { family: 'inet', address: '10.0.1.3', port: 8080 } },
      { op: 'deleteService', key: { kind: 'fwmark', family: 'inet', fwmark: 256 } },
    ]);
  });

  it('treats a new port as a new destination (IPVS keys destinations by address and port)', () => {
    const moved = ipvsStateFromTable({ services: [{ ...web, backends: [{ address: '10.0.1.2', port: 81, weight: 1 }] }] });
    expect(planIpvs(ipvsStateFromTable({ services: [web] }), moved).map((o) => `${o.op}${'dest' in o ? ` ${o.dest.address}:${o.dest.port}` : ''}`)).toEqual([
      'addDest 10.0.1.2:81',
      'deleteDest 10.0.1.2:80',
      'deleteDest 10.0.1.3:8080',
    ]);
  });
});

describe('validateLbTable', () => {
  const bad = (vs: Partial<VirtualService>, re: RegExp) => expect(() => validateLbTable({ services: [{ ...web, ...vs }] })).toThrow(re);

  it('accepts a valid table', () => {
    expect(() => validateLbTable({ services: [web, ingress] })).not.toThrow();
  });

  it('names the service and field at fault', () => {
    bad({ id: 'Bad Id' }, /service id "Bad Id"/);
    bad({ frontend: { kind: 'vip', address: '10.0.0.999', protocol: 'tcp', port: 80 } }, /web: .*10\.0\.0\.999/);
    bad({ frontend: { kind: 'vip', address: '10.0.0.1', protocol: 'tcp', port: 70000 } }, /port 70000/);
    bad({ frontend: { kind: 'vip', address: '10.0.0.1', protocol: 'tcp', port: 0 }, sourceNat: '10.0.0.9' }, /every-port VIP .* sourceNat/);
    bad({ frontend: { kind: 'fwmark', mark: 0, protocol: 'tcp', port: 80 } }, /fwmark 0/);
    bad({ scheduler: 'fifo' as VirtualService['scheduler'] }, /scheduler "fifo"/);
    bad({ backends: [{ address: '10.0.1.2', port: 0, weight: -1 }] }, /weight -1/);
    bad({ backends: [{ address: 'fd00::1', port: 0, weight: 1 }] }, /address family/);
    bad({ backends: [{ address: '10.0.1.2', port: 0, weight: 1 }, { address: '10.0.1.2', port: 80, weight: 1 }] }, /appears twice/);
    bad({ persistenceSeconds: 1.5 }, /persistenceSeconds/);
    expect(() => validateLbTable({ services: [web, { ...web, id: 'web2' }] })).toThrow(/both map/);
    expect(() => validateLbTable({ services: [ingress, { ...ingress, id: 'other', frontend: { ...ingress.frontend, port: 9090 } }] })).toThrow(/share fwmark 256/);
  });

  it('maps an every-port VIP (port 0) to a firewall-mark service fed by a MARK rule on the VIP, as Swarm does', () => {
    const table: LbTable = {
      services: [
        { id: 'api-tcp0', frontend: { kind: 'vip', address: '10.0.7.2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [{ address: '10.0.7.11', port: 0, weight: 1 }] },
        { id: 'api-udp0', frontend: { kind: 'vip', address: '10.0.7.2', protocol: 'udp', port: 0 }, scheduler: 'rr', backends: [{ address: '10.0.7.11', port: 0, weight: 1 }] },
      ],
    };
    const [tcp, udp] = ipvsStateFromTable(table).services;
    expect(tcp!.service.key).toEqual({ kind: 'fwmark', family: 'inet', fwmark: everyPortMark('10.0.7.2', 'tcp') });
    expect(udp!.service.key).toEqual({ kind: 'fwmark', family: 'inet', fwmark: everyPortMark('10.0.7.2', 'tcp') + 1 });
    expect(tcp!.dests.map((d) => d.port)).toEqual([0]); // the kernel keeps the packet's port
    expect(everyPortMark('10.0.7.2', 'tcp')).toBeGreaterThanOrEqual(EVERY_PORT_MARK_BASE);
    expect(everyPortMark('10.0.7.2', 'tcp')).not.toBe(everyPortMark('10.0.7.3', 'tcp'));
    const rules = markRulesFromTable(table);
    expect(rules[0]).toEqual({ id: 'api-tcp0', mark: everyPortMark('10.0.7.2', 'tcp'), protocol: 'tcp', port: 0, address: '10.0.7.2' });
    const text = renderRestore(markRuleSet(rules), new Map()) ?? '';
    expect(text).toContain(`-A MESHNET-IPVS-MARK -d 10.0.7.2/32 -p tcp -m comment --comment "meshnet:api-tcp0" -j MARK --set-xmark 0x${everyPortMark('10.0.7.2', 'tcp').toString(16)}/0xffffffff`);
    expect(markRulesFromState(parseIptablesSave(text))[0]).toEqual(rules[0]);
  });
});

describe('a v6 VIP on IPVS (every port, as lb-plan-v6 gives it)', () => {
  const vip6 = (address: string, protocol: 'tcp' | 'udp', extra: Partial<VirtualService> = {}): VirtualService => ({
    id: `web-${protocol}6-${address.toLowerCase().replace(/:/g, '')}`,
    frontend: { kind: 'vip', address, protocol, port: 0 },
    scheduler: 'rr',
    backends: [
      { address: 'fd00:9::11', port: 0, weight: 1 },
      { address: 'fd00:9::12', port: 0, weight: 1 },
    ],
    ...extra,
  });

  it('is an AF_INET6 fwmark service: 16-byte masq destinations keeping the packet port, persistence per client address (/128)', () => {
    const table: LbTable = { services: [vip6('fd00:9::2', 'tcp', { scheduler: 'sh', persistenceSeconds: 600 }), vip6('fd00:9::2', 'udp')] };
    expect(() => validateLbTable(table)).not.toThrow();
    const [tcp, udp] = ipvsStateFromTable(table).services;
    const mark = everyPortMarks(table)('fd00:9::2', 'tcp');
    expect(mark).toBeGreaterThanOrEqual(EVERY_PORT_MARK_BASE);
    expect(tcp!.service).toEqual({ key: { kind: 'fwmark', family: 'inet6', fwmark: mark }, scheduler: 'sh', flags: 1, timeout: 600, netmaskPrefix: 128 });
    expect(udp!.service.key).toEqual({ kind: 'fwmark', family: 'inet6', fwmark: mark + 1 });
    expect(udp!.service.flags).toBe(0);
    expect(tcp!.dests).toEqual([
      { family: 'inet6', address: 'fd00:9::11', port: 0, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
      { family: 'inet6', address: 'fd00:9::12', port: 0, forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 },
    ]);
  });

  it('gives a VIP the same mark whatever else the table holds and however its address is written', () => {
    const alone = everyPortMarks({ services: [vip6('fd00:9::2', 'tcp')] })('fd00:9::2', 'tcp');
    const crowd = everyPortMarks({ services: [vip6('fd00:7::2', 'tcp'), vip6('fd00:9:0:0::2', 'tcp'), vip6('fd00:9::3', 'udp')] });
    expect(crowd('FD00:9::0:2', 'tcp')).toBe(alone);
    expect(crowd('fd00:9::3', 'tcp')).not.toBe(alone);
    expect(crowd('fd00:7::2', 'tcp')).not.toBe(alone);
  });

  it('moves the later address of two whose hash slots collide to the next free slot, so both keep a mark of their own', () => {
    // Found by search: sha256 of these two addresses shares its first 28 bits.
    const a = vip6('fd00:9::1410', 'tcp');
    const b = vip6('fd00:9::1c4a', 'tcp');
    const lone = (v: VirtualService) => everyPortMarks({ services: [v] })((v.frontend as { address: string }).address, 'tcp');
    expect(lone(a)).toBe(lone(b));
    const both = everyPortMarks({ services: [b, a] });
    expect(both('fd00:9::1410', 'tcp')).toBe(lone(a));
    expect(both('fd00:9::1c4a', 'tcp')).toBe(lone(a) + 2);
    expect(() => validateLbTable({ services: [a, b] })).not.toThrow();
  });

  it('weights, drains and removals become SET_DEST and DEL_DEST on the v6 service, as for v4', () => {
    const before = ipvsStateFromTable({ services: [vip6('fd00:9::2', 'tcp')] });
    const weighted = vip6('fd00:9::2', 'tcp', { scheduler: 'wrr', backends: [{ address: 'fd00:9::11', port: 0, weight: 0 }, { address: 'fd00:9::12', port: 0, weight: 3 }] });
    const key = before.services[0]!.service.key;
    expect(planIpvs(before, ipvsStateFromTable({ services: [weighted] }))).toEqual([
      { op: 'updateService', service: { ...before.services[0]!.service, scheduler: 'wrr' } },
      { op: 'updateDest', service: key, dest: { family: 'inet6', address: 'fd00:9::11', port: 0, forward: 'masq', weight: 0, upperThreshold: 0, lowerThreshold: 0 } },
      { op: 'updateDest', service: key, dest: { family: 'inet6', address: 'fd00:9::12', port: 0, forward: 'masq', weight: 3, upperThreshold: 0, lowerThreshold: 0 } },
    ]);
    const removed = vip6('fd00:9::2', 'tcp', { backends: [{ address: 'fd00:9::12', port: 0, weight: 1 }] });
    expect(planIpvs(before, ipvsStateFromTable({ services: [removed] }))).toEqual([{ op: 'deleteDest', service: key, dest: { family: 'inet6', address: 'fd00:9::11', port: 0 } }]);
  });

  it('rejects a v4 backend behind a v6 VIP and an address that does not parse, naming the service', () => {
    expect(() => validateLbTable({ services: [vip6('fd00:9::2', 'tcp', { backends: [{ address: '10.0.1.2', port: 0, weight: 1 }] })] })).toThrow(/web-tcp6-fd0092: backend 10\.0\.1\.2 is not the same address family/);
    expect(() => validateLbTable({ services: [{ ...vip6('fd00:9::2', 'tcp'), id: 'bad', frontend: { kind: 'vip', address: 'fd00:::2', protocol: 'tcp', port: 0 } }] })).toThrow(/service bad: "fd00:::2" is not an IPv6 address/);
  });

  it('marks the v6 VIP in ip6tables form (/128, canonical address) and keeps it apart from the v4 marks', () => {
    const v4: VirtualService = { id: 'api-tcp0', frontend: { kind: 'vip', address: '10.0.7.2', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [] };
    const table: LbTable = { services: [v4, vip6('FD00:9:0::2', 'tcp')] };
    const { inet, inet6 } = markRulesByFamily(table);
    const mark = everyPortMarks(table)('fd00:9::2', 'tcp');
    expect(inet).toEqual([{ id: 'api-tcp0', mark: everyPortMark('10.0.7.2', 'tcp'), protocol: 'tcp', port: 0, address: '10.0.7.2' }]);
    expect(inet6).toEqual([{ id: 'web-tcp6-fd00902', mark, protocol: 'tcp', port: 0, address: 'fd00:9::2' }]);
    expect(markRulesFromTable(table)).toEqual(inet);
    const text = renderRestore(markRuleSet(inet6), new Map()) ?? '';
    expect(text).toContain(`-A MESHNET-IPVS-MARK -d fd00:9::2/128 -p tcp -m comment --comment "meshnet:web-tcp6-fd00902" -j MARK --set-xmark 0x${mark.toString(16)}/0xffffffff`);
    expect(markRulesFromState(parseIptablesSave(text))).toEqual(inet6);
  });
});
