import { describe, expect, it } from 'vitest';
import { explainPublished } from './explain-published.js';
import { locatedQuery, parseTarget, resolveQuery, viewRequests } from './explain-query.js';
import { kernelViewQuery, parseKernelViewQuery } from './kernel-view-route.js';
import { dnatTarget } from './iptables-counters.js';
import { factsFixture, viewsFixture } from './explain-fixtures.test-data.js';
import { ipv6Twin } from '../model/ipv6.js';
import type { ClusterFacts } from './cluster-facts.js';
import type { Explanation } from './explanation.js';
import type { NodeKernelView } from './kernel-view.js';

// The fixture cluster with its ingress network dual stack, and each node's kernel with the v6 side the agents add:
// the host's v6 address and ip6tables DOCKER-INGRESS, the sandbox's v6 legs and its ip6 meshnet6 table as nft lists it.

const NODES = ['host-a', 'host-b', 'host-c'];
const SUBNET6 = 'fd00:ff::/64';
const six = (ip4: string) => ipv6Twin('10.255.0.0/16', SUBNET6, ip4);
const hostV6 = (i: number) => `2001:db8::${i + 1}`;
const SBOX_GW6 = 'fd6d:6777:6272::2';

function dualFacts(): ClusterFacts {
  const f = factsFixture();
  f.networks = f.networks.map((n) => ({ ...n, subnet6: SUBNET6, gateway6: 'fd00:ff::1' }));
  return f;
}

/** The sandbox's table as `nft list table ip6 meshnet6` prints it (port matches listed as `tcp dport`). */
function listedTable(backends: string[], snatTo: string | null): string {
  const action = backends.length === 0 ? 'reject' : backends.length === 1 ? `dnat to [${backends[0]}]:80` : `dnat ip6 to numgen inc mod ${backends.length} map { ${backends.map((b, i) => `${i} : ${b} . 80`).join(', ')} }`;
  return [
    'table ip6 meshnet6 {',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...(snatTo ? [`\t\tct original ip6 daddr ${SBOX_GW6} meta l4proto tcp ct original proto-dst 8000 ct status dnat snat to ${snatTo}`] : []),
    '\t}',
    '',
    '\tchain dispatch {',
    `\t\tip6 daddr ${SBOX_GW6} tcp dport 8000 ${action}`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

function dualViews(facts = dualFacts()): Map<string, NodeKernelView> {
  const views = viewsFixture();
  for (const [i, node] of NODES.entries()) {
    const v = views.get(node)!;
    const host = v.host!;
    for (const l of host.links) l.addresses6 = l.name === 'eth0' ? [`${hostV6(i)}/64`] : l.name === 'meshnet_gwbr' ? ['fd6d:6777:6272::1/64'] : [];
    host.ip6tables = {
      nat: {
        PREROUTING: [{ rule: '-m addrtype --dst-type LOCAL -m comment --comment meshnet -j DOCKER-INGRESS', packets: 4, bytes: 320 }],
        OUTPUT: [{ rule: '-m addrtype --dst-type LOCAL -m comment --comment meshnet -j DOCKER-INGRESS', packets: 0, bytes: 0 }],
        'DOCKER-INGRESS': [
          { rule: `-p tcp -m tcp --dport 8000 -j DNAT --to-destination [${SBOX_GW6}]:8000`, packets: 3, bytes: 240 },
          { rule: '-j RETURN', packets: 1, bytes: 80 },
        ],
      },
      filter: { 'DOCKER-INGRESS': [{ rule: `-d ${SBOX_GW6}/128 -o meshnet_gwbr -p tcp -m tcp --dport 8000 -m conntrack --ctstate DNAT -j ACCEPT`, packets: 3, bytes: 240 }] },
    };
    const sbox = v.sbox!;
    const endpoint = facts.ingressEndpoints.find((e) => e.node === node)!;
    for (const l of sbox.links) l.addresses6 = l.name === 'eth1' ? [`${SBOX_GW6}/64`] : l.name === 'eth0' ? [`${six(endpoint.ip)}/64`] : [];
    sbox.lb6 = listedTable(facts.tasks.map((t) => six(t.addresses['ingress']!.ip)), six(endpoint.ip));
    sbox.conntrack.push({ protocol: 'tcp', dst: 'fd6d:6777:6272:0000:0000:0000:0000:0002', dport: 8000, backend: six('10.255.0.12'), backendPort: 80, connections: 2 });
  }
  return views;
}

const facts = dualFacts();
const run = (views = dualViews(), extra: { from?: string } = {}): Explanation =>
  explainPublished(facts, views, new Map(), { node: 'host-a', protocol: 'tcp', port: 8000, address6: hostV6(0), ...extra });
const stops = (e: Explanation) => e.problems.filter((p) => p.severity === 'stop').map((p) => p.message);

describe('explain a published port on a node\'s v6 address', () => {
  it('follows ip6tables DOCKER-INGRESS with its counters, the sandbox\'s v6 leg, its meshnet6 DNAT and SNAT, to every backend', () => {
    const e = run();
    expect(e.target).toBe('[2001:db8::1]:8000/tcp (host-a)');
    expect(e.verdict).toBe('delivered');
    expect(e.problems).toEqual([]);
    expect(e.hops.map((h) => h.kind)).toEqual(['host-dnat', 'gwbridge', 'sbox-lb']);
    expect(e.hops[0]!.title).toBe(`tcp 8000 -> DNAT [${SBOX_GW6}]:8000`);
    expect(e.hops[0]!.details).toContain(`nat DOCKER-INGRESS: -p tcp -m tcp --dport 8000 -j DNAT --to-destination [${SBOX_GW6}]:8000   [3 pkts, 240 B]`);
    expect(e.hops[1]!.details).toEqual(['host meshnet_gwbr (bridge) fd6d:6777:6272::1/64 mtu 1500 up', `ingress_sbox eth1 (veth) ${SBOX_GW6}/64 mtu 1500 up`, `ingress_sbox eth0 (veth) ${six('10.255.0.2')}/64 mtu 1450 up (ingress network)`]);
    const lb = e.hops[2]!;
    expect(lb.details[0]).toMatch(/^ip6 meshnet6 dispatch: ip6 daddr fd6d:6777:6272::2 tcp dport 8000 dnat ip6 to numgen inc mod 3 map/);
    expect(lb.details[1]).toBe(`postrouting: ct original ip6 daddr ${SBOX_GW6} meta l4proto tcp ct original proto-dst 8000 ct status dnat snat to ${six('10.255.0.2')}`);
    expect(lb.details).toContain(`backend [${six('10.255.0.12')}]:80 -> 33.3% of new connections, 2 tracked connections  (web.2 on host-b)`);
    expect(e.backends.map((b) => [b.address, b.task, b.node, b.port, b.delivered])).toEqual([
      [six('10.255.0.11'), 'web.1', 'host-a', 80, true],
      [six('10.255.0.12'), 'web.2', 'host-b', 80, true],
      [six('10.255.0.13'), 'web.3', 'host-c', 80, true],
    ]);
    // No REDIRECT on the v6 path: the sandbox DNATs to the target port, and the task is checked listening on it.
    expect(e.backends[1]!.hops.map((h) => h.kind)).toEqual(['overlay', 'return-path', 'task']);
    expect(e.backends[1]!.hops[2]!.title).toBe('web.2 on host-b, port 80');
  });

  it('says the same as v4 when the host has no v6 DNAT, and names the jump when that is missing', () => {
    const views = dualViews();
    views.get('host-a')!.host!.ip6tables!['nat']!['DOCKER-INGRESS'] = [{ rule: '-j RETURN', packets: 0, bytes: 0 }];
    expect(stops(run(views))).toEqual(['nat DOCKER-INGRESS on host-a has no DNAT rule for 8000/tcp: the packet reaches no sandbox']);
    const noJump = dualViews();
    noJump.get('host-a')!.host!.ip6tables!['nat']!['PREROUTING'] = [];
    expect(stops(run(noJump))).toEqual(['nat PREROUTING on host-a does not jump to DOCKER-INGRESS: arriving packets skip it']);
    // A v4 rule alone does not count for v6.
    const v4only = dualViews();
    delete v4only.get('host-a')!.host!.ip6tables;
    expect(run(v4only).verdict).toBe('stops');
  });

  it('stops at a sandbox without its v6 leg, its meshnet6 table, or an entry for the port', () => {
    const noLeg = dualViews();
    for (const l of noLeg.get('host-a')!.sbox!.links) l.addresses6 = [];
    expect(stops(run(noLeg))).toContain(`ingress_sbox on host-a does not hold ${SBOX_GW6}, the address DOCKER-INGRESS DNATs to`);
    const noTable = dualViews();
    noTable.get('host-a')!.sbox!.lb6 = null;
    expect(stops(run(noTable))).toEqual([`ingress_sbox on host-a has no ip6 meshnet6 table: v6 connections to ${SBOX_GW6} go nowhere`]);
    const noEntry = dualViews();
    noEntry.get('host-a')!.sbox!.lb6 = listedTable([], null).replace(/\t\tip6 daddr .*\n/, '');
    expect(stops(run(noEntry))).toEqual([`ingress_sbox on host-a has no ip6 meshnet6 entry for [${SBOX_GW6}]:8000/tcp: the packet is not balanced and goes nowhere`]);
  });

  it('a refused port, a deaf backend and a policy=local entry (no SNAT)', () => {
    const none = dualViews();
    none.get('host-a')!.sbox!.lb6 = listedTable([], null);
    const refused = run(none);
    expect(refused.verdict).toBe('stops');
    expect(refused.summary).toMatch(/no backend with a weight above 0/);
    const deaf = dualViews();
    deaf.get('host-c')!.tasks[0]!.listening = { tcp: [], udp: [] };
    const partial = run(deaf);
    expect(partial.verdict).toBe('partial');
    expect(partial.deliveredShare).toBeCloseTo(2 / 3, 2);
    const local = dualViews();
    local.get('host-a')!.sbox!.lb6 = listedTable([six('10.255.0.11')], null);
    const e = run(local);
    expect(e.hops[2]!.details[1]).toBe('no SNAT: the task sees the client\'s own address (policy=local)');
    expect(e.backends.map((b) => [b.task, b.share])).toEqual([['web.1', 1]]);
    expect(e.idleTasks.map((t) => t.task)).toEqual(['web.2', 'web.3']);
  });

  it('the node itself as the client (its own v6 address) takes the OUTPUT jump', () => {
    const e = run(dualViews(), { from: hostV6(0) });
    expect(e.hops[0]!.details[0]).toMatch(/^nat OUTPUT: /);
    expect(e.hops[0]!.title).toContain('from the node itself');
  });

  it('mode=host over v6: ip6tables MESHNET-HOSTPORT to the task\'s v6 gwbridge address, and that task listening', () => {
    const f = dualFacts();
    f.services[0]!.ports = [{ published: 9100, target: 80, protocol: 'tcp', mode: 'host', policy: 'cluster' }];
    const views = dualViews(f);
    const nat = views.get('host-a')!.host!.ip6tables!['nat']!;
    nat['PREROUTING'] = [{ rule: '-m addrtype --dst-type LOCAL -m comment --comment meshnet -j MESHNET-HOSTPORT', packets: 1, bytes: 80 }];
    nat['MESHNET-HOSTPORT'] = [{ rule: '-p tcp -m tcp --dport 9100 -j DNAT --to-destination [fd6d:6777:6272::4]:80', packets: 1, bytes: 80 }];
    const task = views.get('host-a')!.tasks[0]!;
    for (const l of task.links) l.addresses6 = l.name === 'eth1' ? ['fd6d:6777:6272::4/64'] : [];
    const explain = () => explainPublished(f, views, new Map(), { node: 'host-a', protocol: 'tcp', port: 9100, address6: hostV6(0) });
    const e = explain();
    expect(e.hops.map((h) => [h.kind, h.title, h.status])).toEqual([['host-port', 'tcp 9100 (mode=host) -> DNAT [fd6d:6777:6272::4]:80', 'ok']]);
    expect(e.verdict).toBe('delivered');
    expect(e.backends.map((b) => [b.task, b.address, b.port])).toEqual([['web.1', 'fd6d:6777:6272::4', 80]]);
    task.listening = { tcp: [81], udp: [] };
    expect(stops(explain())).toEqual(['nothing listens on tcp 80 in web.1 (it has tcp 81)']);
    expect(explain().problems[0]!.fix).toContain('[::]:80');
    // The task's leg lost its v6 address: the DNAT reaches nobody.
    for (const l of task.links) l.addresses6 = [];
    expect(stops(explain())[0]).toMatch(/^no task of web on host-a holds fd6d:6777:6272::4/);
    delete nat['MESHNET-HOSTPORT'];
    expect(stops(explain())).toEqual(['nat MESHNET-HOSTPORT on host-a has no DNAT for 9100/tcp']);
  });
});

describe('the [V6]:PORT query of a published port', () => {
  it('is looked up on every node unless --node names one; the holder is the node whose host has the address', () => {
    const q = resolveQuery(parseTarget('[2001:DB8::1]:8000'), facts);
    expect(q).toMatchObject({ kind: 'locate6', address6: '2001:db8::1' });
    expect([...viewRequests(q, facts).values()]).toEqual(NODES.map(() => ({ host: true, v6: true, overlays: [], tasks: [] })));
    expect(locatedQuery(q as Extract<typeof q, { kind: 'locate6' }>, new Set(['host-a']))).toEqual({ kind: 'published', targets: [{ node: 'host-a', protocol: 'tcp', port: 8000, address6: '2001:db8::1' }] });
    expect(() => locatedQuery(q as Extract<typeof q, { kind: 'locate6' }>, new Set())).toThrow(/no node holds 2001:db8::1 .*--node/);
    expect(() => locatedQuery(q as Extract<typeof q, { kind: 'locate6' }>, new Set(['host-a', 'host-b']))).toThrow(/on host-a and host-b: say which with --node/);
  });

  it('--node picks the node, --from takes a v6 client, and the node\'s view is read with its v6 side', () => {
    const q = resolveQuery(parseTarget('[2001:db8::2]:8000'), facts, { node: 'host-b', from: '2001:DB8::100' });
    expect(q).toEqual({ kind: 'published', targets: [{ node: 'host-b', protocol: 'tcp', port: 8000, address6: '2001:db8::2', from: '2001:db8::100' }] });
    const req = viewRequests(q, facts).get('host-b')!;
    expect(req).toMatchObject({ host: true, sbox: true, v6: true });
    expect(parseKernelViewQuery(kernelViewQuery(req)).v6).toBe(true);
    expect(parseKernelViewQuery(kernelViewQuery({ host: true })).v6).toBeUndefined();
    expect(() => resolveQuery(parseTarget('[2001:db8::2]:8000'), facts, { node: 'host-z' })).toThrow(/--node host-z is no live node: give one of host-a, host-b, host-c/);
    expect(() => resolveQuery(parseTarget('[2001:db8::2]:8000'), facts, { from: '192.0.2.100' })).toThrow(/--from takes the client's IPv6 address/);
    expect(() => resolveQuery(parseTarget('host-a:8000'), facts, { node: 'host-b' })).toThrow(/--node is for a \[V6\]:PORT target/);
  });

  it('reads the bracketed DNAT target of ip6tables, and v4 targets as before', () => {
    expect(dnatTarget('-p tcp -m tcp --dport 8000 -j DNAT --to-destination [fd6d:6777:6272::2]:8000')).toEqual({ address: 'fd6d:6777:6272::2', port: 8000 });
    expect(dnatTarget('-p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.18.0.2:8000')).toEqual({ address: '172.18.0.2', port: 8000 });
    expect(dnatTarget('-j DNAT --to-destination 172.18.0.2')).toEqual({ address: '172.18.0.2', port: null });
    expect(dnatTarget('-j RETURN')).toBeNull();
  });
});
