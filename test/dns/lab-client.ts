/**
 * Processes the DNS integration tests run inside task namespaces (compiled to dist/ and started
 * with `node`): a fake upstream, an HTTP server, a UDP flooder, a query loop and a task's own
 * DNS server on :53. Each one is bounded in time and count and prints one JSON line with what
 * it did.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import dnsPacket from 'dns-packet';

const [mode, ...args] = process.argv.slice(2);

function done(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (mode === 'upstream') {
  // Answers `<anything>.example` with a fixed address, everything else NXDOMAIN; counts queries.
  // `tc.example` is truncated over UDP and answered in full (two addresses) over TCP.
  const [address, answerIp] = args as [string, string];
  const answer = (msg: Buffer, overTcp: boolean): Buffer => {
    const q = dnsPacket.decode(msg);
    const question = q.questions?.[0];
    const ours = question && question.name.endsWith('.example');
    const truncate = !overTcp && question?.name === 'tc.example';
    const answers: dnsPacket.Answer[] = ours && question.type === 'A' && !truncate ? [{ type: 'A', name: question.name, ttl: 77, data: answerIp }] : [];
    if (overTcp && question?.name === 'tc.example') answers.push({ type: 'A', name: question.name, ttl: 77, data: '192.0.2.8' });
    return dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (truncate ? dnsPacket.TRUNCATED_RESPONSE : 0) | (ours ? 0 : 3),
      questions: q.questions,
      answers,
    });
  };
  const sock = createSocket('udp4');
  let queries = 0;
  sock.on('message', (msg, rinfo) => {
    queries++;
    sock.send(answer(msg, false), rinfo.port, rinfo.address);
  });
  createTcpServer((conn) => {
    conn.once('data', (d: Buffer) => {
      const body = answer(d.subarray(2, 2 + d.readUInt16BE(0)), true);
      const head = Buffer.alloc(2);
      head.writeUInt16BE(body.length);
      conn.end(Buffer.concat([head, body]));
    });
    conn.on('error', () => conn.destroy());
  }).listen(53, address);
  sock.bind(53, address, () => done({ listening: address }));
  process.on('SIGTERM', () => {
    done({ queries });
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 120_000).unref();
} else if (mode === 'http') {
  const [address] = args as [string];
  createServer((_req, res) => res.end('hello from web\n')).listen(80, address, () => done({ listening: address }));
  setTimeout(() => process.exit(0), 120_000).unref();
} else if (mode === 'flood') {
  // Random and bit-flipped packets at 127.0.0.11:53 as fast as the socket takes them.
  const [countArg, msArg] = args as [string, string];
  const count = Number(countArg);
  const until = Date.now() + Number(msArg);
  const sock = createSocket('udp4');
  const seed = dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'web', class: 'IN' }] });
  let sent = 0;
  const burst = (): void => {
    for (let i = 0; i < 200 && sent < count; i++, sent++) {
      let pkt: Buffer;
      if (sent % 2 === 0) {
        pkt = Buffer.alloc(Math.floor(Math.random() * 512));
        for (let j = 0; j < pkt.length; j++) pkt[j] = Math.floor(Math.random() * 256);
      } else {
        pkt = Buffer.from(seed);
        const bit = Math.floor(Math.random() * pkt.length * 8);
        pkt[bit >> 3]! ^= 1 << (bit & 7);
      }
      sock.send(pkt, 53, '127.0.0.11');
    }
    if (sent < count && Date.now() < until) setImmediate(burst);
    else setTimeout(() => {
      done({ sent });
      sock.close();
    }, 50);
  };
  sock.bind(0, '127.0.0.1', burst);
} else if (mode === 'query-loop') {
  // Asks `name` over and over (1 s timeout each) and counts correct answers.
  const [name, expectIp, countArg, msArg] = args as [string, string, string, string];
  const count = Number(countArg);
  const until = Date.now() + Number(msArg);
  const sock = createSocket('udp4');
  let asked = 0;
  let answered = 0;
  let wrong = 0;
  let timer: NodeJS.Timeout | undefined;
  const ask = (): void => {
    if (asked >= count || Date.now() > until) {
      done({ asked, answered, wrong });
      sock.close();
      return;
    }
    asked++;
    const id = asked & 0xffff;
    sock.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }] }), 53, '127.0.0.11');
    timer = setTimeout(ask, 1000);
    sock.removeAllListeners('message');
    sock.on('message', (msg) => {
      const r = dnsPacket.decode(msg);
      if (r.id !== id) return;
      clearTimeout(timer);
      const ips = (r.answers ?? []).map((a) => (a as { data?: unknown }).data);
      if (ips.length === 1 && ips[0] === expectIp) answered++;
      else wrong++;
      setTimeout(ask, 2);
    });
  };
  sock.bind(0, '127.0.0.1', ask);
} else if (mode === 'dns53') {
  // A task's own DNS server on 0.0.0.0:53/udp: answers every A question with `answerIp`.
  const [answerIp] = args as [string];
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const name = q.questions?.[0]?.name ?? '';
    sock.send(dnsPacket.encode({ type: 'response', id: q.id, flags: 0, questions: q.questions, answers: [{ type: 'A', name, ttl: 1, data: answerIp }] }), rinfo.port, rinfo.address);
  });
  sock.on('error', (err) => {
    done({ error: err.message });
    process.exit(1);
  });
  sock.bind(53, '0.0.0.0', () => done({ listening: '0.0.0.0:53' }));
  setTimeout(() => process.exit(0), 120_000).unref();
} else {
  process.stderr.write(`unknown mode ${mode}: use upstream, http, flood, query-loop or dns53\n`);
  process.exit(2);
}
