/**
 * One process of bench/agent/node-floor: builds the first N layers of what any meshnet agent must hold, with
 * none of meshnet's own code, then prints its settled RSS as one JSON line. The layers use the agent's own
 * dependencies the way the agent does: the store's SQLite file, a libnftables context, an rtnetlink socket,
 * the metrics server and logger, and the DNS worker threads with their UDP sockets.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The layers, in the order they are added; the parent names them from this list. */
export const LAYERS = ['node', 'sqlite', 'libnftables', 'rtnetlink', 'libraries', 'dns worker 1', 'dns worker 2'] as const;

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? 0 : Number(m[1]);
}

/** A DNS worker's floor: an isolate with a bound UDP socket that answers nothing. */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const s = require('node:dgram').createSocket('udp4');
s.bind(0, '127.0.0.1', () => parentPort.postMessage('ready'));
`;

async function build(layers: number, dir: string): Promise<() => void> {
  const closers: (() => void)[] = [];
  // Each layer imports its libraries itself, so a layer's figure includes their code and nothing later's.
  if (layers > 1) {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dir, 'state.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT, revision INTEGER)');
    db.prepare('SELECT * FROM kv').all();
    closers.push(() => db.close());
  }
  if (layers > 2) {
    const { default: koffi } = await import('koffi');
    const so = koffi.load('libnftables.so.1');
    const ctxNew = so.func('void *nft_ctx_new(uint32_t flags)');
    const ctxFree = so.func('void nft_ctx_free(void *ctx)');
    const ctx = ctxNew(0);
    closers.push(() => ctxFree(ctx));
  }
  if (layers > 3) {
    const nl = await import('netlink');
    const sock = nl.createRtNetlink();
    await sock.getLinks();
    closers.push(() => sock.socket.close());
  }
  if (layers > 4) {
    const { pino } = await import('pino');
    const { collectDefaultMetrics, Registry } = await import('prom-client');
    const { z } = await import('zod');
    const log = pino({ base: null }, pino.destination('/dev/null'));
    log.info({ component: 'floor', event: 'start' });
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    await registry.metrics();
    z.object({ name: z.string() }).parse({ name: 'floor' });
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
  }
  for (let w = 5; w < layers; w++) {
    const worker = new Worker(WORKER, { eval: true });
    await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
    closers.push(() => void worker.terminate());
  }
  return () => closers.reverse().forEach((c) => c());
}

/** RSS once it stops moving: four samples 250 ms apart within 256 kB of each other, or the last after 10 s. */
async function settledRss(): Promise<{ rssKb: number; anonKb: number; fileKb: number }> {
  const samples: number[] = [];
  const until = Date.now() + 10_000;
  for (;;) {
    (globalThis as { gc?: () => void }).gc?.();
    samples.push(statusKb('VmRSS'));
    const last = samples.slice(-4);
    if ((last.length === 4 && Math.max(...last) - Math.min(...last) <= 256) || Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { rssKb: statusKb('VmRSS'), anonKb: statusKb('RssAnon'), fileKb: statusKb('RssFile') };
}

/** Builds argv[2] layers and prints the settled RSS; the parent imports this module only for LAYERS. */
async function main(): Promise<void> {
  const layers = Number(process.argv[2]);
  if (!Number.isInteger(layers) || layers < 1 || layers > LAYERS.length) throw new Error(`usage: node-floor-layers.js 1..${LAYERS.length}`);
  const dir = mkdtempSync(join(tmpdir(), 'meshnet-floor-'));
  try {
    const close = await build(layers, dir);
    console.log(JSON.stringify(await settledRss()));
    close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
