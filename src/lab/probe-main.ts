import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { createLogger } from '../log/logger.js';
import { classifyError, judgeAnswer, judgeDnsAnswer, resolverProbeQuery, type ProbeAttempt, type ProbeReport } from './probe-outcome.js';

// The reliability probe: a NEW TCP connection every --interval-ms to --target, one HTTP request each,
// one record per attempt (with --dns: a new connected UDP socket and one DNS query each, as a stub
// resolver asks, so that a closed port fails at once with ECONNREFUSED as it does for glibc). Attempts start on a fixed schedule, not one after another, so a hanging
// attempt does not lower the rate. It stops by itself after --max-ms or --max-attempts, or on SIGTERM
// (finishing the attempts in flight), and prints its ProbeReport as one JSON document on stdout.
// Progress goes to stderr once a second so the runner can wait for traffic before injecting a fault.

const log = createLogger({ component: 'probe' });

function usage(message: string): never {
  log.error({ event: 'probe.bad_arguments', error: `${message}; usage: probe-main --target HOST:PORT --max-ms N [--dns] [--interval-ms 20] [--timeout-ms 1000] [--max-attempts N]` });
  process.exit(2);
}

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) usage(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

let nextQueryId = 1;

/** One DNS query on a UDP socket of its own, connected to the target; ended by `timeoutMs` at the latest. */
function attemptDns(host: string, port: number, timeoutMs: number): Promise<ProbeAttempt> {
  const t = Date.now();
  const id = nextQueryId++ & 0xffff;
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let settled = false;
    const finish = (r: Omit<ProbeAttempt, 't' | 'ms'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.close();
      resolve({ t, ms: Date.now() - t, ...r });
    };
    const timer = setTimeout(() => finish({ outcome: 'timeout', detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
    sock.on('error', (err: NodeJS.ErrnoException) => finish(classifyError(err, false)));
    sock.on('message', (msg) => finish(judgeDnsAnswer(id, msg)));
    sock.connect(port, host, () => sock.send(resolverProbeQuery(id)));
  });
}

/** One request on a connection of its own (`agent: false`), ended by `timeoutMs` at the latest. */
function attempt(host: string, port: number, timeoutMs: number): Promise<ProbeAttempt> {
  const t = Date.now();
  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    const finish = (r: Omit<ProbeAttempt, 't' | 'ms'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ t, ms: Date.now() - t, ...r });
    };
    const req = request({ host, port, path: '/', agent: false, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => finish(judgeAnswer(res.statusCode ?? 0, body)));
      res.on('error', (err: NodeJS.ErrnoException) => finish(classifyError(err, timedOut)));
      res.on('close', () => finish(res.complete ? judgeAnswer(res.statusCode ?? 0, body) : classifyError({ code: 'ECONNRESET' }, timedOut)));
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new Error('probe timeout'));
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish(classifyError(err, timedOut)));
    req.end();
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      'interval-ms': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'max-ms': { type: 'string' },
      'max-attempts': { type: 'string' },
      dns: { type: 'boolean' },
    },
  });
  const m = /^([^:]+):(\d{1,5})$/.exec(values.target ?? '');
  if (!m) usage(`--target must be HOST:PORT, got ${JSON.stringify(values.target)}`);
  const host = m[1]!;
  const port = Number(m[2]);
  const intervalMs = positive('interval-ms', values['interval-ms'], 20);
  const timeoutMs = positive('timeout-ms', values['timeout-ms'], 1000);
  if (values['max-ms'] === undefined) usage('--max-ms is required: the probe always ends by itself');
  const maxMs = positive('max-ms', values['max-ms'], 0);
  const maxAttempts = positive('max-attempts', values['max-attempts'], Math.ceil(maxMs / intervalMs) + 1);

  let stopRequested = false;
  process.once('SIGTERM', () => {
    stopRequested = true;
  });
  const startedAt = Date.now();
  const attempts: ProbeAttempt[] = [];
  const inFlight = new Set<Promise<void>>();
  const progress = setInterval(() => {
    log.info({ event: 'probe.progress', attempts: attempts.length, failed: attempts.filter((a) => a.outcome !== 'ok').length, inFlight: inFlight.size });
  }, 1000);
  let next = startedAt;
  for (let i = 0; i < maxAttempts && !stopRequested && Date.now() - startedAt < maxMs; i++) {
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // A stalled event loop skips the missed slots instead of firing a burst that would load the target.
    next = Math.max(next, Date.now()) + intervalMs;
    const p: Promise<void> = (values.dns ? attemptDns : attempt)(host, port, timeoutMs).then((a) => {
      attempts.push(a);
      inFlight.delete(p);
    });
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  clearInterval(progress);
  attempts.sort((a, b) => a.t - b.t);
  const report: ProbeReport = { target: `${host}:${port}`, intervalMs, timeoutMs, startedAt, endedAt: Date.now(), attempts };
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}

main().catch((err: unknown) => {
  log.error({ event: 'probe.failed', error: err });
  process.exit(1);
});
