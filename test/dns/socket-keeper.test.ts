import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DnsService } from '../../src/dns/dns-service.js';
import { buildNameView } from '../../src/dns/name-view.js';
import { ResolverSocketKeeper } from '../../src/dns/socket-keeper.js';
import { silentLogger } from '../../src/log/logger.js';
import { execIn } from '../../src/sandbox/exec.js';
import { readCmdline } from '../../src/tasks/proc-stat.js';
import { DnsLab, dig } from './lab.js';

const view = buildNameView({ taskNetworks: ['front'], services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }] }], tasks: [] });

/** Polls `check` every 20 ms until it holds (bounded). */
async function until(check: () => boolean | Promise<boolean>, limitMs = 10_000): Promise<boolean> {
  const end = Date.now() + limitMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function manifest(dir: string): { pid: number; sockets: { path: string; port: number }[] } | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'resolver-sockets.json'), 'utf8'));
  } catch {
    return null;
  }
}

/** Bytes waiting in the UDP receive queue of 127.0.0.11:port inside the namespace (/proc/net/udp's rx_queue). */
async function udpQueued(ns: string, port: number): Promise<number> {
  const r = await execIn(ns, ['cat', '/proc/net/udp']);
  const local = `0B00007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const line = r.stdout.split('\n').find((l) => l.trim().split(/\s+/)[1] === local);
  return line ? parseInt(line.trim().split(/\s+/)[4]!.split(':')[1]!, 16) : -1;
}

describe("the resolver's sockets across an agent restart (ResolverSocketKeeper)", () => {
  const lab = new DnsLab();
  const dirs: string[] = [];
  const keepers: ResolverSocketKeeper[] = [];

  afterAll(async () => {
    for (const k of keepers) k.release();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await lab.cleanup();
  });

  it('answers a query sent while no resolver ran, from the same socket, on the same port', async () => {
    const ns = await lab.namespace('keep');
    const dir = mkdtempSync(join(tmpdir(), 'meshnet-keeper-'));
    dirs.push(dir);
    const log = silentLogger();

    const keeper1 = new ResolverSocketKeeper({ dir, log, delayMs: 20 });
    keepers.push(keeper1);
    expect(keeper1.adopt().size).toBe(0);
    const first: DnsService = new DnsService({ upstreams: [], workers: 1, held: new Map(), onSocketsChanged: () => keeper1.schedule(() => first.heldSockets()) });
    const port = (await first.attach(ns, view)).port;
    expect(await until(() => manifest(dir)?.sockets.length === 1)).toBe(true);
    const keeperPid = manifest(dir)!.pid;
    expect(readCmdline(keeperPid)?.[0]).toBe('meshnet-dns-keeper');
    expect(manifest(dir)!.sockets[0]).toMatchObject({ path: ns, port });

    // The agent goes away: its copies close, the keeper's stay.
    keeper1.close();
    await first.close();
    // A client asks meanwhile (dig's own 5 s timeout, as a stub resolver's): the query waits in the socket.
    const asked = dig(ns, ['+time=5', '-p', String(port), 'web']);
    expect(await until(async () => (await udpQueued(ns, port)) > 0)).toBe(true);

    // The next agent takes the sockets back and serves them: the waiting query is answered.
    const keeper2 = new ResolverSocketKeeper({ dir, log, delayMs: 20 });
    keepers.push(keeper2);
    const held = keeper2.adopt();
    expect([...held.keys()]).toEqual([ns]);
    const second: DnsService = new DnsService({ upstreams: [], workers: 1, held, onSocketsChanged: () => keeper2.schedule(() => second.heldSockets()) });
    try {
      expect((await second.attach(ns, view)).port).toBe(port);
      expect((await asked).answers).toEqual(['10.0.1.2']);
      expect(second.releaseUnclaimed()).toBe(0);

      // Detached, the namespace's sockets close everywhere: the keeper lets go and the port is free again.
      await second.detach(ns);
      expect(await until(() => manifest(dir) === null)).toBe(true);
      expect(await until(() => !existsSync(`/proc/${keeperPid}`) || readCmdline(keeperPid)?.[0] !== 'meshnet-dns-keeper')).toBe(true);
      expect(await udpQueued(ns, port)).toBe(-1);
    } finally {
      keeper2.close();
      await second.close();
    }
  });

  it('lets go of the sockets of a namespace no attach claims after the first pass', async () => {
    const ns = await lab.namespace('gone');
    const dir = mkdtempSync(join(tmpdir(), 'meshnet-keeper-'));
    dirs.push(dir);
    const log = silentLogger();
    const keeper1 = new ResolverSocketKeeper({ dir, log, delayMs: 20 });
    keepers.push(keeper1);
    const first: DnsService = new DnsService({ upstreams: [], workers: 1, onSocketsChanged: () => keeper1.schedule(() => first.heldSockets()) });
    const port = (await first.attach(ns, view)).port;
    expect(await until(() => manifest(dir)?.sockets.length === 1)).toBe(true);
    keeper1.close();
    await first.close();

    const keeper2 = new ResolverSocketKeeper({ dir, log, delayMs: 20 });
    keepers.push(keeper2);
    const second: DnsService = new DnsService({ upstreams: [], workers: 1, held: keeper2.adopt(), onSocketsChanged: () => keeper2.schedule(() => second.heldSockets()) });
    try {
      // The task of that namespace went away while no agent ran: nothing attaches it.
      expect(second.releaseUnclaimed()).toBe(1);
      expect(await until(() => manifest(dir) === null)).toBe(true);
      expect(await until(async () => (await udpQueued(ns, port)) === -1)).toBe(true);
      expect((await dig(ns, ['+time=1', '-p', String(port), 'web'])).status).toBe('NO_ANSWER');
    } finally {
      keeper2.close();
      await second.close();
    }
  });

  it('ignores a manifest whose keeper is gone, and one that is not valid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshnet-keeper-'));
    dirs.push(dir);
    const keeper = new ResolverSocketKeeper({ dir, log: silentLogger() });
    keepers.push(keeper);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'resolver-sockets.json'), JSON.stringify({ version: 1, pid: process.pid, startTime: 1, sockets: [{ path: '/x', port: 5353, udp: 3, tcp: 4 }] }));
    // Our own pid is no keeper: nothing is taken from it.
    expect(keeper.adopt().size).toBe(0);
    writeFileSync(join(dir, 'resolver-sockets.json'), '{"version": 2}');
    expect(keeper.adopt().size).toBe(0);
  });
});
