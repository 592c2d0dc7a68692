import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { parseUpstreams, UpstreamForwarder, type Upstream } from './forwarder.js';
import { decodeLoose, queryWire } from './test-fixtures.js';
import { parseQuery, type ParsedQuery } from './wire.js';

// Real sockets on 127.0.0.1 of the test's own namespace: the forwarder is socket plumbing.
const open: { close: () => void }[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function udp(): Promise<Socket> {
  const s = createSocket('udp4');
  open.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

/** A fake upstream: answers A 192.0.2.1 (optionally with TC set, or after a delay), or stays silent. */
async function upstream(mode: 'answer' | 'silent' | 'tc', received: number[]): Promise<Upstream> {
  const s = await udp();
  s.on('message', (msg, rinfo) => {
    received.push(Date.now());
    if (mode === 'silent') return;
    const q = dnsPacket.decode(msg);
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE | (mode === 'tc' ? dnsPacket.TRUNCATED_RESPONSE : 0),
      questions: q.questions,
      answers: mode === 'tc' ? [] : [{ type: 'A', name: q.questions![0]!.name, ttl: 33, data: '192.0.2.1' }],
    });
    s.send(reply, rinfo.port, rinfo.address);
  });
  return { host: '127.0.0.1', port: s.address().port };
}

function parsed(msg: Buffer): ParsedQuery {
  const q = parseQuery(msg);
  if (typeof q === 'number') throw new Error('bad fixture');
  return q;
}

function ask(f: UpstreamForwarder, msg: Buffer, overTcp = false): Promise<Buffer> {
  return new Promise((resolve) => f.forward(msg, parsed(msg), overTcp, resolve));
}

describe('parseUpstreams', () => {
  it('takes ip or ip:port, at most three', () => {
    expect(parseUpstreams(['10.0.0.1', '127.0.0.1:5353'])).toEqual([{ host: '10.0.0.1', port: 53 }, { host: '127.0.0.1', port: 5353 }]);
    expect(() => parseUpstreams(['a', 'b', 'c', 'd'])).toThrow(/at most 3/);
    expect(() => parseUpstreams(['dns.example'])).toThrow(/IPv4/);
    expect(() => parseUpstreams(['10.0.0.1:99999'])).toThrow(/IPv4/);
  });
});

describe('UpstreamForwarder', () => {
  it('relays the upstream answer byte for byte except the ID, which is the client’s again', async () => {
    const u = await upstream('answer', []);
    const f = new UpstreamForwarder(await udp(), { upstreams: [u], timeoutMs: 500, maxConcurrent: 10 });
    const msg = queryWire('www.example', 'A', { id: 0xbeef });
    const reply = decodeLoose(await ask(f, msg));
    expect(reply.id).toBe(0xbeef);
    expect(reply.answers.map((a) => [a.data, a.ttl])).toEqual([['192.0.2.1', 33]]);
    expect(f.inFlight).toBe(0);
  });

  it('tries the upstreams in order, one timeout each, then answers SERVFAIL', async () => {
    const first: number[] = [];
    const second: number[] = [];
    const a = await upstream('silent', first);
    const b = await upstream('answer', second);
    const f = new UpstreamForwarder(await udp(), { upstreams: [a, b], timeoutMs: 200, maxConcurrent: 10 });
    const start = Date.now();
    const reply = decodeLoose(await ask(f, queryWire('www.example', 'A')));
    expect(reply.answers.length).toBe(1);
    expect(first.length).toBe(1);
    expect(second.length).toBe(1);
    expect(second[0]! - start).toBeGreaterThanOrEqual(190);

    const c = await upstream('silent', []);
    const g = new UpstreamForwarder(await udp(), { upstreams: [a, c], timeoutMs: 100, maxConcurrent: 10 });
    const t0 = Date.now();
    const fail = decodeLoose(await ask(g, queryWire('www.example', 'A', { id: 7 })));
    expect(fail.rcode).toBe('SERVFAIL');
    expect(fail.id).toBe(7);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('answers SERVFAIL at once beyond the concurrency bound', async () => {
    const silent = await upstream('silent', []);
    const f = new UpstreamForwarder(await udp(), { upstreams: [silent], timeoutMs: 300, maxConcurrent: 2 });
    void ask(f, queryWire('a.example', 'A'));
    void ask(f, queryWire('b.example', 'A'));
    const t0 = Date.now();
    const third = decodeLoose(await ask(f, queryWire('c.example', 'A')));
    expect(third.rcode).toBe('SERVFAIL');
    expect(Date.now() - t0).toBeLessThan(100);
    expect(f.inFlight).toBe(2);
  });

  it('ignores answers from anyone but the upstream asked, even with the right ID and question', async () => {
    const seenIds: number[] = [];
    const silent = createSocket('udp4');
    open.push(silent);
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    silent.on('message', (msg) => seenIds.push(msg.readUInt16BE(0)));
    const sock = await udp();
    const f = new UpstreamForwarder(sock, { upstreams: [{ host: '127.0.0.1', port: silent.address().port }], timeoutMs: 300, maxConcurrent: 10 });
    const pending = ask(f, queryWire('www.example', 'A'));
    while (seenIds.length === 0) await new Promise((r) => setTimeout(r, 5));
    const spoofer = await udp();
    const fake = dnsPacket.encode({ type: 'response', id: seenIds[0]!, flags: 0, questions: [{ type: 'A', name: 'www.example', class: 'IN' }], answers: [{ type: 'A', name: 'www.example', data: '6.6.6.6' }] });
    spoofer.send(fake, sock.address().port, '127.0.0.1');
    expect(decodeLoose(await pending).rcode).toBe('SERVFAIL');
    // the same bytes from the real upstream's address and port are relayed
    const again = ask(f, queryWire('www.example', 'A'));
    while (seenIds.length < 2) await new Promise((r) => setTimeout(r, 5));
    const real = dnsPacket.encode({ type: 'response', id: seenIds[1]!, flags: 0, questions: [{ type: 'A', name: 'www.example', class: 'IN' }], answers: [{ type: 'A', name: 'www.example', data: '6.6.6.6' }] });
    silent.send(real, sock.address().port, '127.0.0.1');
    expect(decodeLoose(await again).answers.map((a) => a.data)).toEqual(['6.6.6.6']);
  });

  it('fetches a truncated upstream answer again over TCP for a TCP client', async () => {
    const u = await upstream('tc', []);
    const tcpServer: Server = createServer((c) => {
      c.once('data', (d: Buffer) => {
        const q = dnsPacket.decode(d.subarray(2));
        const body = dnsPacket.encode({ type: 'response', id: q.id, flags: 0, questions: q.questions, answers: [{ type: 'A', name: 'big.example', ttl: 9, data: '192.0.2.99' }] });
        const head = Buffer.alloc(2);
        head.writeUInt16BE(body.length);
        c.end(Buffer.concat([head, body]));
      });
    });
    await new Promise<void>((r) => tcpServer.listen(u.port, '127.0.0.1', () => r()));
    open.push({ close: () => tcpServer.close() });
    const f = new UpstreamForwarder(await udp(), {
      upstreams: [u],
      timeoutMs: 500,
      maxConcurrent: 10,
      openTcp: async (up) => connect({ host: up.host, port: up.port }),
    });
    const overUdp = decodeLoose(await ask(f, queryWire('big.example', 'A')));
    expect(overUdp.flags & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
    const overTcp = decodeLoose(await ask(f, queryWire('big.example', 'A', { id: 4321 }), true));
    expect(overTcp.id).toBe(4321);
    expect(overTcp.answers.map((a) => a.data)).toEqual(['192.0.2.99']);
  });
});
