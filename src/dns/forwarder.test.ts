import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseUpstreams, UpstreamForwarder, type ForwarderOptions, type Upstream } from './forwarder.js';
import { queryUdpSocket } from './sockets.js';
import { decodeLoose, queryWire } from './test-fixtures.js';
import { parseQuery, type ParsedQuery } from './wire.js';

// Query IDs must come from crypto.randomInt: a test may script the values it returns.
const scripted = vi.hoisted(() => ({ ids: [] as number[] }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, randomInt: (min: number, max: number) => scripted.ids.shift() ?? real.randomInt(min, max) };
});

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

interface Received {
  at: number;
  id: number;
  port: number;
}

/** A fake upstream: answers A 192.0.2.1 (optionally with TC set), or stays silent; records what it got. */
async function upstream(mode: 'answer' | 'silent' | 'tc', received: (number | Received)[]): Promise<Upstream> {
  const s = await udp();
  s.on('message', (msg, rinfo) => {
    received.push({ at: Date.now(), id: msg.readUInt16BE(0), port: rinfo.port });
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

/** The TCP side of an upstream on `port`: answers A 192.0.2.99 when the test calls the `send` it gets. */
async function tcpUpstream(port: number, onQuery: (send: () => void) => void): Promise<void> {
  const server: Server = createServer((c) => {
    c.once('data', (d: Buffer) => {
      const q = dnsPacket.decode(d.subarray(2));
      const body = dnsPacket.encode({ type: 'response', id: q.id, flags: 0, questions: q.questions, answers: [{ type: 'A', name: 'big.example', ttl: 9, data: '192.0.2.99' }] });
      const head = Buffer.alloc(2);
      head.writeUInt16BE(body.length);
      onQuery(() => c.end(Buffer.concat([head, body])));
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  open.push({ close: () => server.close() });
}

function parsed(msg: Buffer): ParsedQuery {
  const q = parseQuery(msg);
  if (typeof q === 'number') throw new Error('bad fixture');
  return q;
}

/** A forwarder whose upstream queries leave from fresh sockets of the test's namespace. */
function forwarder(opts: Omit<ForwarderOptions, 'openUdp'>): UpstreamForwarder {
  return new UpstreamForwarder({ ...opts, openUdp: queryUdpSocket });
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

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
    const f = forwarder({ upstreams: [u], timeoutMs: 500, maxConcurrent: 10 });
    const msg = queryWire('www.example', 'A', { id: 0xbeef });
    const reply = decodeLoose(await ask(f, msg));
    expect(reply.id).toBe(0xbeef);
    expect(reply.answers.map((a) => [a.data, a.ttl])).toEqual([['192.0.2.1', 33]]);
    expect(f.inFlight).toBe(0);
  });

  it('tries the upstreams in order, one timeout each, then answers SERVFAIL', async () => {
    const first: Received[] = [];
    const second: Received[] = [];
    const a = await upstream('silent', first);
    const b = await upstream('answer', second);
    const f = forwarder({ upstreams: [a, b], timeoutMs: 200, maxConcurrent: 10 });
    const start = Date.now();
    const reply = decodeLoose(await ask(f, queryWire('www.example', 'A')));
    expect(reply.answers.length).toBe(1);
    expect(first.length).toBe(1);
    expect(second.length).toBe(1);
    expect(second[0]!.at - start).toBeGreaterThanOrEqual(190);

    const c = await upstream('silent', []);
    const g = forwarder({ upstreams: [a, c], timeoutMs: 100, maxConcurrent: 10 });
    const t0 = Date.now();
    const fail = decodeLoose(await ask(g, queryWire('www.example', 'A', { id: 7 })));
    expect(fail.rcode).toBe('SERVFAIL');
    expect(fail.id).toBe(7);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('answers SERVFAIL at once beyond the concurrency bound', async () => {
    const silent = await upstream('silent', []);
    const f = forwarder({ upstreams: [silent], timeoutMs: 300, maxConcurrent: 2 });
    void ask(f, queryWire('a.example', 'A'));
    void ask(f, queryWire('b.example', 'A'));
    const t0 = Date.now();
    const third = decodeLoose(await ask(f, queryWire('c.example', 'A')));
    expect(third.rcode).toBe('SERVFAIL');
    expect(Date.now() - t0).toBeLessThan(100);
    expect(f.inFlight).toBe(2);
  });

  it('ignores answers from anyone but the upstream asked, even with the right ID and question', async () => {
    const seen: { id: number; port: number }[] = [];
    const silent = createSocket('udp4');
    open.push(silent);
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    silent.on('message', (msg, rinfo) => seen.push({ id: msg.readUInt16BE(0), port: rinfo.port }));
    const f = forwarder({ upstreams: [{ host: '127.0.0.1', port: silent.address().port }], timeoutMs: 300, maxConcurrent: 10 });
    const pending = ask(f, queryWire('www.example', 'A'));
    await until(() => seen.length > 0);
    const spoofer = await udp();
    const answer = (id: number): Buffer =>
      dnsPacket.encode({ type: 'response', id, flags: 0, questions: [{ type: 'A', name: 'www.example', class: 'IN' }], answers: [{ type: 'A', name: 'www.example', data: '6.6.6.6' }] });
    spoofer.send(answer(seen[0]!.id), seen[0]!.port, '127.0.0.1');
    expect(decodeLoose(await pending).rcode).toBe('SERVFAIL');
    // the same bytes from the real upstream's address and port are relayed
    const again = ask(f, queryWire('www.example', 'A'));
    await until(() => seen.length > 1);
    silent.send(answer(seen[1]!.id), seen[1]!.port, '127.0.0.1');
    expect(decodeLoose(await again).answers.map((a) => a.data)).toEqual(['6.6.6.6']);
  });

  it('takes only an answer with the ID and the question it sent (RFC 5452)', async () => {
    const real = await udp();
    real.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const reply = (id: number, name: string, data: string): Buffer =>
        dnsPacket.encode({ type: 'response', id, flags: 0, questions: [{ type: 'A', name, class: 'IN' }], answers: [{ type: 'A', name, data }] });
      // Two wrong answers first, from the right address and port: neither may end the wait.
      real.send(reply((q.id! + 1) & 0xffff, 'www.example', '6.6.6.1'), rinfo.port, rinfo.address);
      real.send(reply(q.id!, 'evil.example', '6.6.6.2'), rinfo.port, rinfo.address);
      setTimeout(() => real.send(reply(q.id!, 'www.example', '192.0.2.1'), rinfo.port, rinfo.address), 20);
    });
    const f = forwarder({ upstreams: [{ host: '127.0.0.1', port: real.address().port }], timeoutMs: 1000, maxConcurrent: 10 });
    expect(decodeLoose(await ask(f, queryWire('www.example', 'A'))).answers.map((a) => a.data)).toEqual(['192.0.2.1']);
  });

  it('takes every query ID from crypto.randomInt', async () => {
    const got: Received[] = [];
    const u = await upstream('answer', got);
    const f = forwarder({ upstreams: [u], timeoutMs: 500, maxConcurrent: 10 });
    scripted.ids.push(0x0a0a, 0xb0b0);
    await ask(f, queryWire('one.example', 'A', { id: 1 }));
    await ask(f, queryWire('two.example', 'A', { id: 1 }));
    expect(got.map((r) => r.id)).toEqual([0x0a0a, 0xb0b0]);
  });

  it('sends every upstream query from a fresh random port, never one shared by queries in flight', async () => {
    const got: Received[] = [];
    const u = await upstream('answer', got);
    const f = forwarder({ upstreams: [u], timeoutMs: 1000, maxConcurrent: 64 });
    for (let i = 0; i < 30; i++) await ask(f, queryWire(`s${i}.example`, 'A'));
    // 30 draws from ~28,000 ports: a repeat or two may happen by chance, a fixed port cannot pass.
    expect(new Set(got.map((r) => r.port)).size).toBeGreaterThanOrEqual(27);
    got.length = 0;
    await Promise.all(Array.from({ length: 40 }, (_, i) => ask(f, queryWire(`c${i}.example`, 'A'))));
    expect(got.length).toBe(40);
    expect(new Set(got.map((r) => r.port)).size).toBe(40);
  });

  it('counts a TCP retry against the concurrency bound until it ends', async () => {
    const u = await upstream('tc', []);
    let release: (() => void) | null = null;
    await tcpUpstream(u.port, (send) => (release = send));
    let connected = false;
    const f = forwarder({
      upstreams: [u],
      timeoutMs: 2000,
      maxConcurrent: 1,
      openTcp: async (up) => {
        connected = true;
        return connect({ host: up.host, port: up.port });
      },
    });
    const first = ask(f, queryWire('big.example', 'A'), true);
    await until(() => connected);
    expect(f.inFlight).toBe(1);
    expect(decodeLoose(await ask(f, queryWire('other.example', 'A'))).rcode).toBe('SERVFAIL');
    await until(() => release !== null);
    release!();
    expect(decodeLoose(await first).answers.map((a) => a.data)).toEqual(['192.0.2.99']);
    expect(f.inFlight).toBe(0);
  });

  it('fetches a truncated upstream answer again over TCP for a TCP client', async () => {
    const u = await upstream('tc', []);
    await tcpUpstream(u.port, (send) => send());
    const f = forwarder({
      upstreams: [u],
      timeoutMs: 500,
      maxConcurrent: 10,
      openTcp: async (up: Upstream) => connect({ host: up.host, port: up.port }),
    });
    const overUdp = decodeLoose(await ask(f, queryWire('big.example', 'A')));
    expect(overUdp.flags & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
    const overTcp = decodeLoose(await ask(f, queryWire('big.example', 'A', { id: 4321 }), true));
    expect(overTcp.id).toBe(4321);
    expect(overTcp.answers.map((a) => a.data)).toEqual(['192.0.2.99']);
  });
});
