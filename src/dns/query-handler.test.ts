import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { compileAnswerTable } from './answer-table.js';
import { handleQuery, type QueryOutcome } from './query-handler.js';
import { decodeLoose, queryWire, sampleView, type LoosePacket } from './test-fixtures.js';
import { buildNameView } from './name-view.js';

const table = compileAnswerTable(sampleView(), { forwarding: true });
const closed = compileAnswerTable(sampleView(), { forwarding: false });

function reply(o: QueryOutcome): LoosePacket {
  if (o.kind !== 'reply') throw new Error(`expected a reply, got ${o.kind}`);
  return decodeLoose(o.wire);
}

function addresses(p: LoosePacket): string[] {
  return (p.answers ?? []).filter((a) => a.type === 'A').map((a) => String(a.data));
}

describe('name rules', () => {
  it('<service> answers the VIP of the first network the task is on, with ID, question and TTL 5', () => {
    const p = reply(handleQuery(table, queryWire('web', 'A', { id: 777 }), 'udp'));
    expect(p.id).toBe(777);
    expect(p.rcode).toBe('NOERROR');
    expect(p.flags & dnsPacket.AUTHORITATIVE_ANSWER).toBeTruthy();
    expect(p.flags & dnsPacket.RECURSION_DESIRED).toBeTruthy();
    expect(p.questions).toEqual([{ name: 'web', type: 'A', class: 'IN' }]);
    expect(addresses(p)).toEqual(['10.0.1.2']);
    expect(p.answers?.[0]?.ttl).toBe(5);
    expect(p.answers?.[0]?.name).toBe('web');
  });

  it('<service>.<network> answers the VIP on that network, aliases too, case-insensitively', () => {
    expect(addresses(reply(handleQuery(table, queryWire('web.back', 'A'), 'udp')))).toEqual(['10.0.2.2']);
    expect(addresses(reply(handleQuery(table, queryWire('WwW.FrOnt', 'A'), 'udp')))).toEqual(['10.0.1.2']);
    // the question comes back exactly as asked (0x20 randomisation)
    expect(reply(handleQuery(table, queryWire('WwW.FrOnt', 'A'), 'udp')).questions?.[0]?.name).toBe('WwW.FrOnt');
  });

  it('tasks.<service> answers every running task IP on the network; stopped tasks are left out', () => {
    expect(addresses(reply(handleQuery(table, queryWire('tasks.web', 'A'), 'udp'))).sort()).toEqual(['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    expect(addresses(reply(handleQuery(table, queryWire('tasks.web.back', 'A'), 'udp'))).sort()).toEqual(['10.0.2.3', '10.0.2.4']);
  });

  it('dnsrr services answer their task IPs instead of a VIP', () => {
    expect(addresses(reply(handleQuery(table, queryWire('db', 'A'), 'udp'))).sort()).toEqual(['10.0.2.10', '10.0.2.11']);
  });

  it('task names, <name>.<network> and task aliases answer the task IP', () => {
    expect(addresses(reply(handleQuery(table, queryWire('web.1.aaa', 'A'), 'udp')))).toEqual(['10.0.1.3']);
    expect(addresses(reply(handleQuery(table, queryWire('web.1.aaa.back', 'A'), 'udp')))).toEqual(['10.0.2.3']);
    expect(addresses(reply(handleQuery(table, queryWire('canary', 'A'), 'udp')))).toEqual(['10.0.1.5']);
  });

  it('PTR answers for task IPs and VIPs', () => {
    const task = reply(handleQuery(table, queryWire('4.2.0.10.in-addr.arpa', 'PTR'), 'udp'));
    expect(task.answers?.map((a) => a.data)).toEqual(['web.2.bbb.back']);
    const vip = reply(handleQuery(table, queryWire('2.1.0.10.in-addr.arpa', 'PTR'), 'udp'));
    expect(vip.answers?.map((a) => a.data)).toEqual(['web.front']);
  });

  it('AAAA for a name with only IPv4 answers NOERROR with no data, not NXDOMAIN', () => {
    const p = reply(handleQuery(table, queryWire('web', 'AAAA'), 'udp'));
    expect(p.rcode).toBe('NOERROR');
    expect(p.answers).toEqual([]);
  });

  it('SRV _<port>._<proto>.<service> points at the service with the target port and glue', () => {
    for (const name of ['_80._tcp.web', '_8080._tcp.web']) {
      const p = reply(handleQuery(table, queryWire(name, 'SRV'), 'udp'));
      expect(p.answers?.map((a) => a.data)).toEqual([{ priority: 0, weight: 0, port: 80, target: 'web.front' }]);
      expect(p.additionals?.map((a) => [a.name, a.data])).toEqual([['web.front', '10.0.1.2']]);
    }
  });

  it('ANY answers the A records', () => {
    expect(addresses(reply(handleQuery(table, queryWire('web', 'ANY' as dnsPacket.RecordType), 'udp')))).toEqual(['10.0.1.2']);
  });

  it('a TTL can be configured', () => {
    const t = compileAnswerTable(sampleView(), { forwarding: true, ttlSeconds: 42 });
    expect(reply(handleQuery(t, queryWire('web', 'A'), 'udp')).answers?.[0]?.ttl).toBe(42);
  });
});

describe('scoping', () => {
  it('a service on a network the task is not on is not ours: it is forwarded, or NXDOMAIN without upstreams', () => {
    expect(handleQuery(table, queryWire('secret', 'A'), 'udp').kind).toBe('forward');
    expect(handleQuery(table, queryWire('tasks.secret', 'A'), 'udp').kind).toBe('forward');
    expect(handleQuery(table, queryWire('3.9.0.10.in-addr.arpa', 'PTR'), 'udp').kind).toBe('forward');
    const p = reply(handleQuery(closed, queryWire('secret', 'A'), 'udp'));
    expect(p.rcode).toBe('NXDOMAIN');
    expect(p.answers).toEqual([]);
  });

  it('an unqualified name on two networks resolves on the task’s first network', () => {
    const reversed = compileAnswerTable(
      buildNameView({
        taskNetworks: ['back', 'front'],
        services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }, { network: 'back', vip: '10.0.2.2' }] }],
        tasks: [],
      }),
      { forwarding: false },
    );
    expect(addresses(reply(handleQuery(reversed, queryWire('web', 'A'), 'udp')))).toEqual(['10.0.2.2']);
  });

  it('names with a dot inside a label are never ours', () => {
    // one 8-byte label "web.back" reads like the two labels web + back once joined with dots
    const q = Buffer.from(queryWire('webxback', 'A'));
    q[12 + 1 + 3] = 0x2e;
    const o = handleQuery(table, q, 'udp');
    expect(o.kind).toBe('forward');
  });
});

describe('shuffling', () => {
  it('task IP answers come in varying orders and always the full set', () => {
    const orders = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const ips = addresses(reply(handleQuery(table, queryWire('tasks.web', 'A'), 'udp')));
      expect([...ips].sort()).toEqual(['10.0.1.3', '10.0.1.4', '10.0.1.5']);
      orders.add(ips.join(','));
    }
    expect(orders.size).toBe(6);
  });

  it('the first answer is spread over the tasks', () => {
    const first = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const ip = addresses(reply(handleQuery(table, queryWire('tasks.web', 'A'), 'udp')))[0]!;
      first.set(ip, (first.get(ip) ?? 0) + 1);
    }
    for (const n of first.values()) expect(n).toBeGreaterThan(800);
  });
});

describe('truncation', () => {
  const many = compileAnswerTable(
    buildNameView({
      taskNetworks: ['n'],
      services: [{ name: 'big', endpointMode: 'dnsrr', attachments: [{ network: 'n' }] }],
      tasks: Array.from({ length: 100 }, (_, i) => ({ name: `big.${i}`, service: 'big', running: true, ips: [{ network: 'n', ip: `10.1.0.${i + 1}` }] })),
    }),
    { forwarding: false },
  );

  it('UDP without EDNS stays within 512 bytes, sets TC and keeps whole records', () => {
    const o = handleQuery(many, queryWire('tasks.big', 'A'), 'udp');
    if (o.kind !== 'reply') throw new Error(o.kind);
    expect(o.wire.length).toBeLessThanOrEqual(512);
    const p = decodeLoose(o.wire);
    expect(p.flags & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
    expect(p.answers?.length).toBe(Math.floor((512 - 12 - 15) / 16));
  });

  it('UDP with EDNS0 uses the advertised size and echoes an OPT record', () => {
    const o = handleQuery(many, queryWire('tasks.big', 'A', { edns: 1000 }), 'udp');
    if (o.kind !== 'reply') throw new Error(o.kind);
    expect(o.wire.length).toBeLessThanOrEqual(1000);
    const p = decodeLoose(o.wire);
    expect(p.flags & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
    expect(p.additionals?.[0]?.type).toBe('OPT');
    const big = handleQuery(many, queryWire('tasks.big', 'A', { edns: 4096 }), 'udp');
    if (big.kind !== 'reply') throw new Error(big.kind);
    const all = decodeLoose(big.wire);
    expect(all.flags & dnsPacket.TRUNCATED_RESPONSE).toBeFalsy();
    expect(all.answers?.length).toBe(100);
  });

  it('TCP answers are complete', () => {
    const o = handleQuery(many, queryWire('tasks.big', 'A'), 'tcp');
    if (o.kind !== 'reply') throw new Error(o.kind);
    const p = decodeLoose(o.wire);
    expect(p.flags & dnsPacket.TRUNCATED_RESPONSE).toBeFalsy();
    expect(new Set(addresses(p)).size).toBe(100);
  });

  it('an SRV answer that does not fit drops its glue before its records', () => {
    const o = handleQuery(table, queryWire('_80._tcp.web', 'SRV'), 'udp');
    if (o.kind !== 'reply') throw new Error(o.kind);
    expect(decodeLoose(o.wire).additionals?.length).toBe(1);
  });
});
