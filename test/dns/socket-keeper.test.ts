import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const moved = buildNameView({ taskNetworks: ['front'], services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.9' }] }], tasks: [] });

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
  const log = silentLogger();

  afterAll(async () => {
    for (const k of keepers) k.release();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await lab.cleanup();
  });

  /** An agent's resolver as the agent wires it: its sockets held by a keeper of state directory `dir`. */
  function agentResolver(dir: string): { keeper: ResolverSocketKeeper; dns: DnsService } {
    const keeper = new ResolverSocketKeeper({ dir, log, delayMs: 20 });
    keepers.push(keeper);
    const dns: DnsService = new DnsService({ upstreams: [], workers: 1, held: keeper.adopt(), onSocketsChanged: (what) => keeper.schedule(() => dns.heldSockets(), what) });
    return { keeper, dns };
  }

  /** The agent goes away: its own copies close, the keeper's stay. */
  async function stop(agent: { keeper: ResolverSocketKeeper; dns: DnsService }): Promise<void> {
    agent.keeper.close();
    await agent.dns.close();
  }

  /** A namespace served by a first agent, which then stops; the keeper holds its sockets. */
  async function servedThenStopped(name: string, before?: (agent: { dns: DnsService }, ns: string, dir: string) => Promise<void>): Promise<{ ns: string; dir: string; port: number; keeperPid: number }> {
    const ns = await lab.namespace(name);
    const dir = mkdtempSync(join(tmpdir(), 'meshnet-keeper-'));
    dirs.push(dir);
    const first = agentResolver(dir);
    const port = (await first.dns.attach(ns, view)).port;
    expect(await until(() => manifest(dir)?.sockets.length === 1)).toBe(true);
    const keeperPid = manifest(dir)!.pid;
    expect(readCmdline(keeperPid)?.[0]).toBe('meshnet-dns-keeper');
    expect(manifest(dir)!.sockets[0]).toMatchObject({ path: ns, port });
    await before?.(first, ns, dir);
    await stop(first);
    return { ns, dir, port, keeperPid };
  }

  it('answers a query sent while no resolver ran, from the same socket, on the same port', async () => {
    const { ns, dir, port, keeperPid } = await servedThenStopped('keep');
    // A client asks meanwhile (dig's own 5 s timeout, as a stub resolver's): the query waits in the socket.
    const asked = dig(ns, ['+time=5', '-p', String(port), 'web']);
    expect(await until(async () => (await udpQueued(ns, port)) > 0)).toBe(true);

    // The next agent takes the sockets back and serves them: the waiting query is answered.
    const second = agentResolver(dir);
    try {
      expect(second.dns.heldSockets().map((h) => h.path)).toEqual([ns]);
      expect((await second.dns.attach(ns, view)).port).toBe(port);
      expect((await asked).answers).toEqual(['10.0.1.2']);
      expect(await second.dns.releaseUnclaimed()).toBe(0);

      // Detached, the namespace's sockets close everywhere: the keeper lets go and the port is free again.
      await second.dns.detach(ns);
      expect(await until(() => manifest(dir) === null)).toBe(true);
      expect(await until(() => !existsSync(`/proc/${keeperPid}`) || readCmdline(keeperPid)?.[0] !== 'meshnet-dns-keeper')).toBe(true);
      expect(await udpQueued(ns, port)).toBe(-1);
    } finally {
      await stop(second);
    }
  });

  it('answers at once with the names last served, before any attach, then with the names an attach brings', async () => {
    const { ns, dir, port } = await servedThenStopped('early', async (first, ns, dir) => {
      const keeperPid = manifest(dir)!.pid;
      // A change of names rewrites the record, not the keeper.
      expect(first.dns.update(ns, moved)).toBe(true);
      expect(await until(() => JSON.stringify(manifest(dir)).includes('10.0.1.9'))).toBe(true);
      expect(manifest(dir)!.pid).toBe(keeperPid);
    });
    const second = agentResolver(dir);
    try {
      expect(await second.dns.serveHeld()).toBe(1);
      // No attach yet (as before an agent's store is open): the last names answer.
      expect((await dig(ns, ['-p', String(port), 'web'])).answers).toEqual(['10.0.1.9']);
      // The first pass's attach: same port, its names from now on.
      expect((await second.dns.attach(ns, view)).port).toBe(port);
      expect((await dig(ns, ['-p', String(port), 'web'])).answers).toEqual(['10.0.1.2']);
      expect(await second.dns.releaseUnclaimed()).toBe(0);
    } finally {
      await stop(second);
    }
  });

  it('stops answering in a namespace served early that no attach claims', async () => {
    const { ns, dir, port } = await servedThenStopped('early-gone');
    const second = agentResolver(dir);
    try {
      expect(await second.dns.serveHeld()).toBe(1);
      expect((await dig(ns, ['-p', String(port), 'web'])).answers).toEqual(['10.0.1.2']);
      expect(await second.dns.releaseUnclaimed()).toBe(1);
      expect(second.dns.attached()).toEqual([]);
      expect(await until(() => manifest(dir) === null)).toBe(true);
      expect(await until(async () => (await udpQueued(ns, port)) === -1)).toBe(true);
    } finally {
      await stop(second);
    }
  });

  it('lets go of the sockets of a namespace no attach claims after the first pass', async () => {
    const { ns, dir, port } = await servedThenStopped('gone');
    const second = agentResolver(dir);
    try {
      // The task of that namespace went away while no agent ran: nothing attaches it.
      expect(await second.dns.releaseUnclaimed()).toBe(1);
      expect(await until(() => manifest(dir) === null)).toBe(true);
      expect(await until(async () => (await udpQueued(ns, port)) === -1)).toBe(true);
      expect((await dig(ns, ['+time=1', '-p', String(port), 'web'])).status).toBe('NO_ANSWER');
    } finally {
      await stop(second);
    }
  });

  it('ignores a manifest whose keeper is gone, and one that is not valid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshnet-keeper-'));
    dirs.push(dir);
    const keeper = new ResolverSocketKeeper({ dir, log });
    keepers.push(keeper);
    writeFileSync(join(dir, 'resolver-sockets.json'), JSON.stringify({ version: 1, pid: process.pid, startTime: 1, sockets: [{ path: '/x', port: 5353, udp: 3, tcp: 4 }] }));
    // Our own pid is no keeper: nothing is taken from it.
    expect(keeper.adopt().size).toBe(0);
    writeFileSync(join(dir, 'resolver-sockets.json'), '{"version": 2}');
    expect(keeper.adopt().size).toBe(0);
  });
});
