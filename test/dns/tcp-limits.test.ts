import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { compileAnswerTable } from '../../src/dns/answer-table.js';
import { buildNameView } from '../../src/dns/name-view.js';
import { NamespaceServer } from '../../src/dns/namespace-server.js';
import { queryUdpSocket } from '../../src/dns/sockets.js';
import type { TcpLimits } from '../../src/dns/tcp-session.js';
import { queryWire } from '../../src/dns/test-fixtures.js';

// The TCP service is socket plumbing: one NamespaceServer on 127.0.0.1 of the test's own
// namespace, real clients on loopback, nothing else touched.

/** `tasks.big` answers 100 addresses over TCP (about 1.7 KB): answers pile up fast. */
const table = compileAnswerTable(
  buildNameView({
    taskNetworks: ['big'],
    services: [{ name: 'big', endpointMode: 'dnsrr', attachments: [{ network: 'big' }] }],
    tasks: Array.from({ length: 100 }, (_, i) => ({ name: `big.${i}`, service: 'big', running: true, ips: [{ network: 'big', ip: `10.0.2.${i + 10}` }] })),
  }),
  { forwarding: false },
);

const servers: NamespaceServer[] = [];
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(tcp: Partial<TcpLimits>): Promise<NamespaceServer> {
  const s = await NamespaceServer.open({
    table,
    address: '127.0.0.1',
    tcp,
    forward: { upstreams: [], timeoutMs: 500, maxConcurrent: 4, openUdp: queryUdpSocket },
    log: () => undefined,
  });
  servers.push(s);
  return s;
}

function framed(name: string, id: number): Buffer {
  const q = queryWire(name, 'A', { id });
  const head = Buffer.alloc(2);
  head.writeUInt16BE(q.length);
  return Buffer.concat([head, q]);
}

/** A client that counts the answers it reads (while reading) and notes when the server closed it. */
async function client(port: number): Promise<{ sock: Socket; answers: () => number; closedAt: () => number | null }> {
  const sock = connect({ host: '127.0.0.1', port });
  clients.push(sock);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  let pending: Buffer = Buffer.alloc(0);
  let answers = 0;
  let closedAt: number | null = null;
  sock.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      pending = pending.subarray(2 + pending.readUInt16BE(0));
      answers++;
    }
  });
  sock.on('error', () => undefined);
  sock.on('close', () => (closedAt = Date.now()));
  return { sock, answers: () => answers, closedAt: () => closedAt };
}

async function until(cond: () => boolean, limitMs: number, what: string): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not reached within ${limitMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('resolver TCP limits', () => {
  it('stops reading a client that does not read its answers, and resumes when it does', async () => {
    const highWater = 16 * 1024;
    const s = await server({ writeHighWaterBytes: highWater });
    const c = await client(s.port);
    c.sock.pause();
    // 12,000 answers of 1.7 KB (20 MB) overflow the kernel's socket buffers many times over.
    const count = 12_000;
    c.sock.write(Buffer.concat(Array.from({ length: count }, (_, i) => framed('tasks.big', i & 0xffff))));
    await until(() => s.tcpStats().paused === 1, 20_000, 'the server pauses the connection');
    // Bounded by the high-water mark plus the one answer that crossed it.
    expect(s.tcpStats().queuedBytes).toBeLessThanOrEqual(highWater + 4096);
    c.sock.resume();
    await until(() => c.answers() === count, 30_000, `all ${count} answers read`);
    expect(s.tcpStats()).toMatchObject({ connections: 1, paused: 0 });
  });

  it('closes a connection idle of complete queries, whatever stray bytes trickle in', async () => {
    const s = await server({ idleMs: 300, maxLifetimeMs: 5000 });
    const c = await client(s.port);
    const opened = Date.now();
    const query = framed('tasks.big', 1);
    // One byte every 50 ms: the query would be complete only after about 2 s.
    for (let i = 0; i < query.length && c.closedAt() === null; i++) {
      c.sock.write(query.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(c.closedAt()).not.toBeNull();
    expect(c.closedAt()! - opened).toBeGreaterThanOrEqual(250);
    expect(c.closedAt()! - opened).toBeLessThan(1500);
    expect(c.answers()).toBe(0);
  });

  it('closes a busy connection at its maximum lifetime', async () => {
    const s = await server({ idleMs: 400, maxLifetimeMs: 1200 });
    const c = await client(s.port);
    const opened = Date.now();
    // A complete query every 50 ms keeps it from ever being idle; bounded at 5 s.
    for (let i = 0; i < 100 && c.closedAt() === null; i++) {
      c.sock.write(framed('tasks.big', i));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(c.closedAt()).not.toBeNull();
    expect(c.closedAt()! - opened).toBeGreaterThanOrEqual(1100);
    expect(c.answers()).toBeGreaterThan(5);
  });

  it('serves at most maxConnections at once and closes the rest at once', async () => {
    const s = await server({ maxConnections: 3 });
    const cs: Awaited<ReturnType<typeof client>>[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await client(s.port);
      await until(() => s.tcpStats().connections === Math.min(i + 1, 3) || c.closedAt() !== null, 5000, 'the server takes or refuses the connection');
      cs.push(c);
    }
    for (const [i, c] of cs.entries()) if (c.closedAt() === null) c.sock.write(framed('tasks.big', i));
    await until(() => cs.filter((c) => c.answers() === 1).length === 3, 5000, 'three answers');
    expect(cs.map((c) => (c.answers() === 1 ? 'served' : c.closedAt() !== null ? 'closed' : 'open'))).toEqual(['served', 'served', 'served', 'closed', 'closed']);
    expect(s.tcpStats().connections).toBe(3);
  });
});
