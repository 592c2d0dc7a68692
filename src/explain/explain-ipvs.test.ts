import { describe, expect, it } from 'vitest';
import { parseIptablesSave } from '../mesh/iptables-save-parse.js';
import type { IpvsDestStatus, IpvsService } from '../vip/ipvs/codec.js';
import { everyPortMarks } from '../vip/ipvs/every-port-marks.js';
import { parseTarget, resolveQuery } from './explain-query.js';
import { explainViews } from './explain-run.js';
import { factsFixture, viewsFixture } from './explain-fixtures.test-data.js';
import { ipvsTableView, type IpvsKernelRead } from './ipvs-table-view.js';
import type { ClusterFacts } from './cluster-facts.js';

// The fixture cluster on IPVS nodes: each sandbox's published port 8000 is FWM 8256 fed by a MARK rule and
// SNATed to the sandbox's ingress address, as the IPVS backend writes them (iptables-save text as printed).
const taskIp = (slot: number) => `10.255.0.${10 + slot}`;
const dest = (address: string, weight = 1, activeConns = 0, inactiveConns = 0): IpvsDestStatus => ({ family: address.includes(':') ? 'inet6' : 'inet', address, port: 0, forward: 'masq', weight, upperThreshold: 0, lowerThreshold: 0, activeConns, inactiveConns, persistConns: 0 });
const fwm = (fwmark: number, family: 'inet' | 'inet6' = 'inet'): IpvsService => ({ key: { kind: 'fwmark', family, fwmark }, scheduler: 'rr', flags: 0, timeout: 0, netmaskPrefix: family === 'inet' ? 32 : 128 });
const MANGLE = `*mangle
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:MESHNET-IPVS-MARK - [0:0]
-A PREROUTING -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK
-A OUTPUT -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK
-A MESHNET-IPVS-MARK -d 172.18.0.2/32 -p tcp -m tcp --dport 8000 -m comment --comment "meshnet:ingress-tcp-8000" -j MARK --set-xmark 0x2040/0xffffffff
COMMIT
`;
const nat = (source: string) => `*nat
:POSTROUTING ACCEPT [0:0]
:MESHNET-IPVS-SNAT - [0:0]
-A POSTROUTING -m comment --comment meshnet-ipvs-snat -j MESHNET-IPVS-SNAT
-A MESHNET-IPVS-SNAT -m mark --mark 0x2040 -m comment --comment "meshnet:ingress-tcp-8000" -j SNAT --to-source ${source}
COMMIT
`;

function sboxRead(node: string, over: Partial<IpvsKernelRead> = {}): IpvsKernelRead {
  const sbox = `10.255.0.${['host-a', 'host-b', 'host-c'].indexOf(node) + 2}`;
  return {
    services: [{ service: fwm(8256), dests: [dest(taskIp(1), 1, 2, 1), dest(taskIp(2)), dest(taskIp(3))] }],
    mangle: parseIptablesSave(MANGLE),
    nat: parseIptablesSave(nat(sbox)),
    ...over,
  };
}

/** The fixture's views with every sandbox's table read from IPVS instead of nftables. */
function ipvsViews(read: (node: string) => IpvsKernelRead = sboxRead) {
  const views = viewsFixture();
  for (const [node, v] of views) v.sbox!.lb = ipvsTableView(read(node));
  return views;
}

const published = (facts: ClusterFacts, views: ReturnType<typeof viewsFixture>) => explainViews(resolveQuery(parseTarget('host-a:8000'), facts), facts, views)[0]!;

describe('explain on IPVS nodes: the balancing hop read from IPVS', () => {
  it('reads IPVS services, marks and SNAT back as the table the nftables read-back gives, with the connections IPVS counts', () => {
    const view = ipvsTableView(sboxRead('host-a'))!;
    expect(view.backend).toBe('ipvs');
    expect(view.skeletonComplete).toBe(true);
    expect(view.table.services).toEqual([
      {
        id: 'ingress-tcp-8000',
        frontend: { kind: 'fwmark', mark: 8256, protocol: 'tcp', port: 8000, address: '172.18.0.2' },
        scheduler: 'rr',
        sourceNat: '10.255.0.2',
        backends: [1, 2, 3].map((s) => ({ address: taskIp(s), port: 0, weight: 1 })),
      },
    ]);
    expect(view.connections![0]).toEqual({ service: 'ingress-tcp-8000', address: taskIp(1), port: 0, active: 2, inactive: 1 });
    expect(ipvsTableView({ services: [], mangle: new Map() })).toBeNull();
  });

  it('follows a published port through the IPVS service to every backend: mark, scheduler, SNAT, shares, IPVS counts', () => {
    const e = published(factsFixture(), ipvsViews());
    expect(e.verdict).toBe('delivered');
    const lb = e.hops.find((h) => h.kind === 'sbox-lb')!;
    expect(lb.title).toBe('ingress-tcp-8000: 3 of 3 backends selectable, IPVS scheduler rr');
    expect(lb.details[0]).toBe('IPVS FWM 8256 (0x2040) -> entry ingress-tcp-8000: scheduler rr, SNAT to 10.255.0.2 (nat MESHNET-IPVS-SNAT)');
    expect(lb.details[1]).toBe(`backend ${taskIp(1)}:8000 weight 1 -> 33.3% of new connections, 2 active / 1 inactive (IPVS)  (web.1 on host-a)`);
    expect(e.backends.map((b) => [b.task, b.delivered])).toEqual([['web.1', true], ['web.2', true], ['web.3', true]]);
  });

  it('stops at a policy=cluster port whose SNAT rule is missing (replies would bypass the sandbox), not at a policy=local one', () => {
    const noSnat = (node: string) => sboxRead(node, { nat: parseIptablesSave('*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n') });
    const e = published(factsFixture(), ipvsViews(noSnat));
    expect(e.verdict).toBe('stops');
    expect(e.problems.filter((p) => p.severity === 'stop').map((p) => p.message)).toEqual([
      'ingress-tcp-8000 in ingress_sbox on host-a does not rewrite the source: a backend answers the client directly instead of through ingress_sbox, and the connection fails',
    ]);
    const local = factsFixture();
    local.services[0]!.ports[0]!.policy = 'local';
    expect(published(local, ipvsViews(noSnat)).problems.map((p) => p.message)).not.toContainEqual(expect.stringContaining('does not rewrite the source'));
  });

  it('warns when a mark rule is unhooked, stops when the mark rule is gone, and when no destination has weight', () => {
    const unhooked = (node: string) => sboxRead(node, { mangle: parseIptablesSave(MANGLE.replace(/-A PREROUTING .*\n/, '')) });
    const view = ipvsTableView(unhooked('host-a'))!;
    expect(view.skeletonComplete).toBe(false);
    expect(published(factsFixture(), ipvsViews(unhooked)).problems[0]!.message).toMatch(/has no MARK rule in mangle MESHNET-IPVS-MARK, or PREROUTING does not jump there/);
    const unmarked = (node: string) => sboxRead(node, { mangle: parseIptablesSave('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n') });
    const gone = published(factsFixture(), ipvsViews(unmarked));
    expect(gone.verdict).toBe('stops');
    expect(gone.summary).toMatch(/no load-balancing entry for 8000\/tcp/);
    const drained = (node: string) => sboxRead(node, { services: [{ service: fwm(8256), dests: [1, 2, 3].map((s) => dest(taskIp(s), 0)) }] });
    expect(published(factsFixture(), ipvsViews(drained)).problems.filter((p) => p.severity === 'stop').map((p) => p.message)).toEqual([
      'ingress-tcp-8000 has no backend with a weight above 0: IPVS balances no new connection (it is refused or lost)',
    ]);
  });

  it('explains a VIP from a task through the task\'s every-port IPVS service, v4 and v6', () => {
    const facts = factsFixture();
    const VIP6 = 'fd6d:6573:686e:1::64';
    const six = (slot: number) => `fd6d:6573:686e:1::${slot + 10}`;
    facts.services[0]!.vips6 = { ingress: VIP6 };
    for (const t of facts.tasks) t.addresses['ingress']!.ip6 = six(t.slot);
    const vip = { kind: 'vip' as const, protocol: 'tcp' as const, port: 0 };
    const mark4 = everyPortMarks({ services: [] })('10.255.0.100', 'tcp');
    const mark6 = everyPortMarks({ services: [{ id: 'x', frontend: { ...vip, address: VIP6 }, scheduler: 'rr', backends: [] }] })(VIP6, 'tcp');
    const mangle = (d: string, mark: number) =>
      `*mangle\n-A PREROUTING -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK\n-A MESHNET-IPVS-MARK -d ${d} -p tcp -m comment --comment "meshnet:web-tcp0" -j MARK --set-xmark 0x${mark.toString(16)}/0xffffffff\nCOMMIT\n`;
    const views = viewsFixture();
    const client = views.get('host-b')!.tasks[0]!;
    client.lb = ipvsTableView({ services: [{ service: fwm(mark4), dests: [1, 2, 3].map((s) => dest(taskIp(s))) }], mangle: parseIptablesSave(mangle('10.255.0.100/32', mark4)) });
    const e4 = explainViews(resolveQuery(parseTarget('10.255.0.100:80'), facts, { from: 'web.2' }), facts, views)[0]!;
    expect(e4.verdict).toBe('delivered');
    expect(e4.hops[0]!.details).toContain(`IPVS FWM ${mark4} (0x${mark4.toString(16)}, every tcp port of 10.255.0.100) -> entry web-tcp0: scheduler rr`);
    expect(e4.backends.map((b) => `${b.task} ${b.port}`)).toEqual(['web.1 80', 'web.2 80', 'web.3 80']);

    client.lb = ipvsTableView({ services: [{ service: fwm(mark6, 'inet6'), dests: [1, 2, 3].map((s) => dest(six(s))) }], mangle: new Map(), mangle6: parseIptablesSave(mangle(`${VIP6}/128`, mark6)) });
    views.get('host-c')!.tasks[0]!.listening = { tcp: [], udp: [] };
    const e6 = explainViews(resolveQuery(parseTarget(`[${VIP6}]:80`), facts, { from: 'web.2' }), facts, views)[0]!;
    expect(e6.hops[0]!.details[0]).toBe(`from ${six(2)}`);
    expect(e6.backends.map((b) => [b.task, b.delivered])).toEqual([['web.1', true], ['web.2', true], ['web.3', false]]);
    expect(e6.problems.find((p) => p.severity === 'stop')!.message).toBe('nothing in web.3 listens on tcp 80');
  });
});
