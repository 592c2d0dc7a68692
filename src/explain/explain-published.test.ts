import { describe, expect, it } from 'vitest';
import { explainPublished } from './explain-published.js';
import { factsFixture, viewsFixture } from './explain-fixtures.test-data.js';
import type { Explanation } from './explanation.js';

const facts = factsFixture();
const run = (views = viewsFixture(), node = 'host-a', extra: { from?: string; packetSize?: number; port?: number } = {}): Explanation =>
  explainPublished(facts, views, new Map(), { node, protocol: 'tcp', port: extra.port ?? 8000, ...extra });
const stops = (e: Explanation) => e.problems.filter((p) => p.severity === 'stop').map((p) => p.message);

describe('explainPublished on fixture views', () => {
  it('follows a healthy path: DNAT with counters, sandbox, balancer, each backend delivered', () => {
    const e = run();
    expect(e.verdict).toBe('delivered');
    expect(e.problems).toEqual([]);
    expect(e.hops.map((h) => h.kind)).toEqual(['host-dnat', 'gwbridge', 'sbox-lb']);
    expect(e.hops[0]!.details).toContain('nat DOCKER-INGRESS: -p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.18.0.2:8000   [9 pkts, 540 B]');
    expect(e.hops[2]!.details[0]).toBe('mark 0x2040 (8256) -> entry ingress-tcp-8000: scheduler rr, SNAT to 10.255.0.2, chain mark-tcp-inc-3');
    expect(e.hops[2]!.details[1]).toContain('2 tracked connections');
    expect(e.backends.map((b) => [b.task, b.node, Math.round(b.share * 1000) / 1000, b.delivered])).toEqual([
      ['web.1', 'host-a', 0.333, true],
      ['web.2', 'host-b', 0.333, true],
      ['web.3', 'host-c', 0.333, true],
    ]);
    const remote = e.backends[1]!;
    expect(remote.hops.map((h) => h.kind)).toEqual(['overlay', 'return-path', 'task']);
    expect(remote.hops[0]!.details).toContain('fdb 02:42:0a:ff:00:0c dst 192.0.2.2 permanent');
    expect(remote.hops[2]!.details).toContain('nat MESHNET-INGRESS: -d 10.255.0.12/32 -p tcp -m tcp --dport 8000 -j REDIRECT --to-ports 80   [5 pkts, 300 B]');
  });

  it('takes the OUTPUT jump for a client on the node itself', () => {
    const e = run(viewsFixture(), 'host-a', { from: '127.0.0.1' });
    expect(e.hops[0]!.details[0]).toMatch(/^nat OUTPUT: .* \[1 pkts, 60 B\]$/);
    expect(e.hops[0]!.title).toContain('from the node itself');
  });

  it('finds a missing FDB entry: that backend stops, the others deliver, and the fix names the entry', () => {
    const views = viewsFixture();
    const ov = views.get('host-a')!.overlays[0]!;
    ov.fdb = ov.fdb.filter((f) => f.mac !== '02:42:0a:ff:00:0d');
    const e = run(views);
    expect(e.verdict).toBe('partial');
    expect(e.deliveredShare).toBeCloseTo(2 / 3, 2);
    const p = e.problems.find((x) => x.severity === 'stop')!;
    expect(p).toMatchObject({ node: 'host-a', namespace: 'ov-ingress' });
    expect(p.message).toBe('no FDB entry for 02:42:0a:ff:00:0d (web.3 on host-c) on vxlan0: frames to it are sent to no VTEP (learning is off)');
    expect(p.fix).toContain('nsenter --net=/run/meshnet/netns/ov-ingress -- bridge fdb replace 02:42:0a:ff:00:0d dev vxlan0 dst 192.0.2.3 self permanent');
    expect(e.summary).toMatch(/^33% of new connections to host-a:8000\/tcp stop/);
  });

  it('finds the missing return entry on the task\'s host', () => {
    const views = viewsFixture();
    const ov = views.get('host-b')!.overlays[0]!;
    ov.neighbors = ov.neighbors.filter((n) => n.ip !== '10.255.0.2');
    const e = run(views);
    expect(stops(e)).toEqual(['replies are lost: no neighbour entry for 10.255.0.2 (ingress_sbox on host-a) on vxlan0: ARP for it gets no answer']);
  });

  it('reports a backend at weight 0 as draining: a warning, no share, still delivered overall', () => {
    const views = viewsFixture();
    views.get('host-a')!.sbox!.lb!.table.services[0]!.backends[2]!.weight = 0;
    const e = run(views);
    expect(e.verdict).toBe('delivered');
    expect(e.backends.find((b) => b.task === 'web.3')).toMatchObject({ weight: 0, share: 0, delivered: false });
    expect(e.problems.map((p) => [p.severity, p.message])).toEqual([['warn', 'backend 10.255.0.13 (web.3 on host-c) has weight 0: it gets no new connections (it is draining, or was set so by hand)']]);
  });

  it('stops when every backend is at weight 0: the sandbox refuses the connection', () => {
    const views = viewsFixture();
    for (const b of views.get('host-a')!.sbox!.lb!.table.services[0]!.backends) b.weight = 0;
    const e = run(views);
    expect(e.verdict).toBe('stops');
    expect(stops(e)).toEqual(['ingress-tcp-8000 has no backend with a weight above 0: a new connection is refused (tcp reset)']);
  });

  it('finds a task where nothing listens on the target port, naming what it listens on', () => {
    const views = viewsFixture();
    views.get('host-b')!.tasks[0]!.listening = { tcp: [81], udp: [] };
    const e = run(views);
    const p = e.problems.find((x) => x.severity === 'stop')!;
    expect(p.message).toBe('nothing listens on tcp 80 in web.2 (it listens on tcp 81): the connection is reset');
    expect(p.fix).toBe("make the service's command listen on 80, or publish the port it serves: meshnet service update web --publish-rm 8000 --publish-add 8000:81");
  });

  it('explains why a starting task is not a backend', () => {
    const f = factsFixture();
    f.tasks[1]!.state = 'starting';
    const views = viewsFixture();
    views.get('host-b')!.tasks[0]!.listening = { tcp: [81], udp: [] };
    const svc = views.get('host-a')!.sbox!.lb!.table.services[0]!;
    svc.backends = svc.backends.filter((b) => b.address !== '10.255.0.12');
    const e = explainPublished(f, views, new Map(), { node: 'host-a', protocol: 'tcp', port: 8000 });
    expect(e.idleTasks).toEqual([{ task: 'web.2', node: 'host-b', state: 'starting', reason: 'state starting; nothing listens on tcp 80 in its namespace (it listens on tcp 81)' }]);
    expect(e.verdict).toBe('delivered');
  });

  it('stops at the host without a DNAT rule, and says when nothing publishes the port', () => {
    const views = viewsFixture();
    views.get('host-a')!.host!.iptables['nat']!['DOCKER-INGRESS'] = [{ rule: '-j RETURN', packets: 0, bytes: 0 }];
    expect(stops(run(views))).toEqual(['nat DOCKER-INGRESS on host-a has no DNAT rule for 8000/tcp: the packet reaches no sandbox']);
    expect(stops(run(viewsFixture(), 'host-a', { port: 9000 }))).toEqual(['no service publishes 9000/tcp']);
  });

  it('counts 70 bytes of VXLAN over a v6 underlay', () => {
    const f = factsFixture();
    f.nodes = f.nodes.map((n, i) => ({ ...n, underlayIp: `2001:db8::${i + 1}` }));
    const views = viewsFixture();
    [...views.values()].forEach((v, i) => {
      const eth0 = v.host!.links.find((l) => l.name === 'eth0')!;
      eth0.addresses6 = [`2001:db8::${i + 1}/64`];
      eth0.mtu = 1500;
    });
    const e = explainPublished(f, views, new Map(), { node: 'host-a', protocol: 'tcp', port: 8000 });
    expect(stops(e).find((m) => m.includes('bytes of VXLAN'))).toBe("the overlay MTU 1450 in ov-ingress plus 70 bytes of VXLAN exceeds eth0's MTU 1500: full-size packets are dropped");
  });

  it('finds an overlay MTU the underlay cannot carry, and a datagram larger than the overlay', () => {
    const views = viewsFixture();
    views.get('host-a')!.host!.links.find((l) => l.name === 'eth0')!.mtu = 1450;
    expect(stops(run(views))[0]).toBe("the overlay MTU 1450 in ov-ingress plus 50 bytes of VXLAN exceeds eth0's MTU 1450: full-size packets are dropped");
    const big = run(viewsFixture(), 'host-a', { packetSize: 1480 });
    expect(big.problems.filter((p) => p.severity === 'warn').map((p) => p.message)[0]).toMatch(/^a 1480-byte packet exceeds the overlay MTU 1450: TCP negotiates a smaller MSS/);
  });

  it('says which node could not be read instead of guessing', () => {
    const views = viewsFixture();
    views.delete('host-c');
    const e = explainPublished(facts, views, new Map([['host-c', 'no meshnet agent for it runs on this machine']]), { node: 'host-a', protocol: 'tcp', port: 8000 });
    const branch = e.backends.find((b) => b.node === 'host-c')!;
    expect(branch.hops.map((h) => h.title)).toEqual(['ingress vni 4096 -> host-c (VTEP 192.0.2.3)', 'not read: no meshnet agent for it runs on this machine', 'not read: no meshnet agent for it runs on this machine']);
    expect(branch.hops.slice(1).map((h) => h.status)).toEqual(['warn', 'warn']);
    expect(e.problems.map((p) => p.message)).toContain('web.3 on host-c was not checked: no meshnet agent for it runs on this machine');
  });

  it('mode=host: the DNAT to a task\'s gwbridge address, and that task listening on the target port', () => {
    const f = factsFixture();
    f.services[0]!.ports = [{ published: 9100, target: 80, protocol: 'tcp', mode: 'host', policy: 'cluster' }];
    const views = viewsFixture();
    const nat = views.get('host-a')!.host!.iptables['nat']!;
    nat['PREROUTING'] = [{ rule: '-m addrtype --dst-type LOCAL -m comment --comment meshnet -j MESHNET-HOSTPORT', packets: 2, bytes: 120 }];
    nat['MESHNET-HOSTPORT'] = [{ rule: '-p tcp -m tcp --dport 9100 -j DNAT --to-destination 172.18.0.3:80', packets: 2, bytes: 120 }];
    const explain = () => explainPublished(f, views, new Map(), { node: 'host-a', protocol: 'tcp', port: 9100 });
    const e = explain();
    expect(e.verdict).toBe('delivered');
    expect(e.backends.map((b) => [b.task, b.node, b.address, b.delivered])).toEqual([['web.1', 'host-a', '172.18.0.3', true]]);
    views.get('host-a')!.tasks[0]!.listening = { tcp: [], udp: [] };
    expect(stops(explain())).toEqual(['nothing listens on tcp 80 in web.1']);
  });
});
