import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { Rtnl } from '../../src/sandbox/rtnl.js';
import { execIn, spawnIn } from '../../src/sandbox/exec.js';
import { setSysctl } from '../../src/sandbox/sysctl.js';
import { NftBackend } from '../../src/vip/nft/nft-backend.js';
import { nftGeneration, NftGenerations } from '../../src/sandbox/nft-generation.js';
import { NftApplyError } from '../../src/vip/nft/errors.js';
import { renderModel, sortedBackends } from '../../src/vip/nft/render.js';
import { SAMPLE_TABLE } from '../../src/vip/nft/sample-table.fixture.js';
import type { LbBackendTarget, LbTable, VirtualService } from '../../src/vip/lb-table.js';

// One router, one client task, five backend tasks, each a namespace; nothing in the root namespace.
const root = `/run/meshnet-test-vip-${randomBytes(3).toString('hex')}`;
const dir = new NetnsDir(`${root}/netns`);
const CLIENT_IP = '10.10.0.2';
const VIP = '10.99.0.10';
const UDP_VIP = '10.99.0.11';
const EMPTY_VIP = '10.99.0.12';
const backendIp = (i: number) => `10.20.${i}.2`;
const ns: Record<string, string> = {};
const servers: ChildProcess[] = [];
let nft: NftBackend;

// Answers HTTP with its own name and the client address it saw; echoes UDP with its name.
const SERVER = `
const [name, ip] = process.argv.slice(1);
require('http').createServer((req, res) => res.end(name + ' ' + req.socket.remoteAddress)).listen(8080, ip, () => console.log('ready'));
const u = require('dgram').createSocket('udp4');
u.on('message', (m, r) => u.send(name, r.port, r.address));
u.bind(5353, ip);
`;

// Serves "router" on ports 80 and 81 of the address it is given.
const ROUTER_SERVER = `
const ip = process.argv[1]; let up = 0;
for (const port of [80, 81]) require('http').createServer((q, r) => r.end('router')).listen(port, ip, () => ++up === 2 && console.log('ready'));
`;

// Holds one keep-alive connection; each "go" line on stdin sends one request on it and prints
// the answering backend and the client port (the same port means the same connection).
const KEEPALIVE_CLIENT = `
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
require('readline').createInterface({ input: process.stdin }).on('line', () => {
  const req = http.get(process.argv[1], { agent, timeout: 3000 }, (res) => {
    let body = ''; res.on('data', (d) => body += d);
    res.on('end', () => console.log(JSON.stringify({ body: body.split(' ')[0], port: req.socket.localPort })));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));
});
`;

// Sends `count` sequential requests (new connection each) to url; prints one JSON line of results.
const CLIENT = `
const [url, count, pauseMs, stream] = process.argv.slice(1);
const http = require('http');
const results = [];
const one = () => new Promise((resolve) => {
  const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
    let body = ''; res.on('data', (d) => body += d); res.on('end', () => resolve({ ok: true, body }));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => resolve({ ok: false, error: e.code || e.message }));
});
(async () => {
  for (let i = 0; i < Number(count); i++) {
    const r = await one();
    if (stream) console.log(JSON.stringify(r)); else results.push(r);
    if (Number(pauseMs)) await new Promise((r) => setTimeout(r, Number(pauseMs)));
  }
  if (!stream) console.log(JSON.stringify(results));
})();
`;

function startServer(i: number): Promise<void> {
  const child = spawnIn(ns[`b${i}`]!, [process.execPath, '-e', SERVER, `backend-${i}`, backendIp(i)], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers[i] = child;
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`backend-${i} exited with ${code}`)));
  });
}

function stopServer(i: number): void {
  servers[i]?.kill('SIGKILL');
}

async function requests(url: string, count: number, pauseMs = 0): Promise<{ ok: boolean; body?: string; error?: string }[]> {
  const r = await execIn(ns.client!, [process.execPath, '-e', CLIENT, url, String(count), String(pauseMs)], { timeoutMs: 30_000 });
  return JSON.parse(r.stdout);
}

/** The JSON lines `child` prints, as they come, and a wait for a condition on them (woken by each line). */
function jsonLines<T>(child: ChildProcess): { lines: T[]; until: (what: string, cond: () => boolean) => Promise<void> } {
  const lines: T[] = [];
  let wake: (() => void) | null = null;
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
    wake?.();
  });
  const until = async (what: string, cond: () => boolean) => {
    const deadline = Date.now() + 15_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} after ${lines.length} lines`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
  };
  return { lines, until };
}

/** The digest element the client namespace's table holds. */
async function kernelDigest(netns = ns.client!): Promise<string> {
  const r = await execIn(netns, ['nft', 'list', 'map', 'ip', 'meshnet', 'table-digest']);
  return /elements = \{ (0x[0-9a-f]+ \. 0x[0-9a-f]+) :/.exec(r.stdout)?.[1] ?? 'none';
}

/** The digest the renderer gives `t` (what the kernel must hold after applying it). */
function renderedDigest(t: LbTable): string {
  return [...renderModel(t).maps.get('table-digest')!.keys()][0]!;
}

function webService(backends: number[], weightZero: number[] = []): VirtualService {
  return {
    id: 'web',
    frontend: { kind: 'vip', address: VIP, protocol: 'tcp', port: 80 },
    scheduler: 'rr',
    backends: backends.map((i): LbBackendTarget => ({ address: backendIp(i), port: 8080, weight: weightZero.includes(i) ? 0 : 1 })),
  };
}

function table(web: VirtualService, udpBackends: number[] = [1, 2]): LbTable {
  return {
    services: [
      web,
      {
        id: 'echo',
        frontend: { kind: 'vip', address: UDP_VIP, protocol: 'udp', port: 53 },
        scheduler: 'rr',
        backends: udpBackends.map((i) => ({ address: backendIp(i), port: 5353, weight: 1 })),
      },
      { id: 'empty', frontend: { kind: 'vip', address: EMPTY_VIP, protocol: 'tcp', port: 80 }, scheduler: 'rr', backends: [] },
    ],
  };
}

beforeAll(async () => {
  for (const name of ['router', 'client', 'b1', 'b2', 'b3', 'b4', 'b5']) ns[name] = dir.create(name);
  setSysctl(ns.router!, 'net.ipv4.ip_forward', 1);
  const router = Rtnl.open(ns.router!);
  try {
    await router.setLink('lo', { up: true });
    const wire = async (peerNs: string, routerSide: string, peerSide: string, net: string) => {
      await router.createVeth(routerSide, peerSide, { peerNetns: peerNs });
      await router.addAddress(routerSide, `${net}.1/24`);
      await router.setLink(routerSide, { up: true });
      const peer = Rtnl.open(peerNs);
      try {
        await peer.setLink('lo', { up: true });
        await peer.addAddress(peerSide, `${net}.2/24`);
        await peer.setLink(peerSide, { up: true });
        await peer.replaceRoute({ dst: 'default', gateway: `${net}.1` });
      } finally {
        peer.close();
      }
    };
    await wire(ns.client!, 'rc', 'eth0', '10.10.0');
    for (let i = 1; i <= 5; i++) await wire(ns[`b${i}`]!, `rb${i}`, 'eth0', `10.20.${i}`);
  } finally {
    router.close();
  }
  await Promise.all([1, 2, 3, 4, 5].map(startServer));
  await execIn(ns.router!, ['ip', 'addr', 'add', `${EMPTY_VIP}/32`, 'dev', 'lo']);
  const decoy = spawnIn(ns.router!, [process.execPath, '-e', ROUTER_SERVER, EMPTY_VIP], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(decoy);
  await new Promise((resolve) => decoy.stdout!.once('data', resolve));
  nft = new NftBackend(ns.client!);
}, 60_000);

afterAll(async () => {
  nft?.close();
  for (const s of servers) s?.kill('SIGKILL');
  dir.removeAll();
  rmSync(root, { recursive: true, force: true });
});

describe('nftables VIP in a client task namespace', () => {
  it('spreads 300 requests over every backend, each seeing the real client address', async () => {
    const report = await nft.apply(table(webService([1, 2, 3])));
    expect(report.changes).toBeGreaterThan(0);
    expect(nft.lastApply.mode).toBe('full');
    const results = await requests(`http://${VIP}/`, 300);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    const counts = new Map<string, number>();
    for (const r of results) {
      const [name, client] = r.body!.split(' ');
      expect(client).toBe(CLIENT_IP);
      counts.set(name!, (counts.get(name!) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['backend-1', 'backend-2', 'backend-3']);
    // numgen inc: exact round robin over sequential new connections.
    expect([...counts.values()]).toEqual([100, 100, 100]);
  });

  it('refuses new connections to a service without backends at once, only on its own VIP:port', async () => {
    const started = performance.now();
    // The router really serves EMPTY_VIP on ports 80 and 81: whatever refuses port 80 is meshnet.
    const r = await execIn(ns.client!, ['curl', '-sS', '--max-time', '3', `http://${EMPTY_VIP}:80/`], { allowFailure: true });
    expect(r.code).toBe(7); // could not connect (a blackhole would be 28, timeout)
    expect(performance.now() - started).toBeLessThan(1500);
    const other = await execIn(ns.client!, ['curl', '-sS', '--max-time', '3', `http://${EMPTY_VIP}:81/`]);
    expect(other.stdout).toBe('router');
  });

  it('scales to 5 and down to 1 under a request loop without failing a request (drain first)', async () => {
    // The loop streams one JSON line per request, so each step waits for traffic, not for a clock.
    const child = spawnIn(ns.client!, [process.execPath, '-e', CLIENT, `http://${VIP}/`, '3000', '2', 'stream'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { lines: results, until } = jsonLines<{ ok: boolean; body?: string; error?: string }>(child);
    const from = (n: number) => results.slice(n).map((r) => r.body?.split(' ')[0]);
    try {
      await until('traffic', () => results.length >= 20);
      await nft.apply(table(webService([1, 2, 3, 4, 5])));
      expect(nft.lastApply.mode).toBe('incremental');
      let mark = results.length;
      await until('backends 4 and 5', () => from(mark).includes('backend-4') && from(mark).includes('backend-5'));
      await nft.apply(table(webService([1, 2, 3, 4, 5], [2, 3, 4, 5]))); // drain: weight 0
      mark = results.length;
      await until('drained', () => results.length >= mark + 30);
      await nft.apply(table(webService([1]))); // then remove
      for (const i of [4, 5]) stopServer(i);
      mark = results.length;
      await until('after removal', () => results.length >= mark + 30);
    } finally {
      child.kill('SIGTERM');
    }
    expect(results.filter((r) => !r.ok)).toEqual([]);
    const seen = new Set(results.map((r) => r.body!.split(' ')[0]));
    expect([...seen].sort()).toEqual(['backend-1', 'backend-2', 'backend-3', 'backend-4', 'backend-5']);
    // At most one request was in flight when the drain landed; everything after went to backend-1.
    expect(results.slice(-40).every((r) => r.body!.startsWith('backend-1 '))).toBe(true);
  }, 60_000);

  it('reads back what it applied, and a new agent adopts the table without rebuilding it', async () => {
    const want = table(webService([1, 3], [3]));
    await nft.apply(want);
    const read = await nft.read();
    const byId = new Map(read.services.map((s) => [s.id, s]));
    expect(byId.get('web')!.backends).toEqual([
      { address: backendIp(1), port: 8080, weight: 1 },
      { address: backendIp(3), port: 8080, weight: 0 },
    ]);
    expect(byId.get('empty')).toEqual(want.services[2]);
    expect(byId.get('echo')!.frontend).toEqual(want.services[1]!.frontend);
    const second = new NftBackend(ns.client!);
    try {
      // A new agent builds its table afresh (no shared objects): the digest still matches.
      const report = await second.apply(structuredClone(want));
      expect(second.lastApply.adopted).toBe(true);
      expect(second.lastApply.adoptedBy).toBe('digest');
      expect(report.changes).toBe(0);
      // The digest read filled nft's cache: an adopting agent does not hold it for every namespace.
      expect(second.contextOpen).toBe(false);
      // What it adopted is what it can change incrementally from.
      await second.apply(table(webService([1, 3])));
      expect(second.lastApply.mode).toBe('incremental');
      expect(await kernelDigest()).toBe(renderedDigest(table(webService([1, 3]))));
    } finally {
      second.close();
    }
    // The table changed while no agent ran: the digests differ, and the table is rebuilt in one transaction.
    const third = new NftBackend(ns.client!);
    try {
      await third.apply(want);
      expect(third.lastApply.adoptedBy).toBe('rebuild');
      expect(third.lastApply.mode).toBe('full');
      expect((await third.read()).services.find((s) => s.id === 'web')!.backends).toEqual(byId.get('web')!.backends);
      expect(await kernelDigest()).toBe(renderedDigest(want));
    } finally {
      third.close();
    }
  });

  it('frees an idle nft context and opens a new one for the next change', async () => {
    // In the router's namespace: the shared backend's cache of the client's table stays true.
    const idle = new NftBackend(ns.router!, { idleCloseMs: 50 });
    try {
      await idle.apply(table(webService([1, 2])));
      expect(idle.contextOpen).toBe(true);
      const deadline = Date.now() + 5_000;
      while (idle.contextOpen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(idle.contextOpen).toBe(false);
      // The cache outlives the context: the next change is still incremental, and lands.
      await idle.apply(table(webService([2])));
      expect(idle.lastApply.mode).toBe('incremental');
      expect(await kernelDigest(ns.router!)).toBe(renderedDigest(table(webService([2]))));
      await idle.destroy();
    } finally {
      idle.close();
    }
  });

  it('keeps the digest element equal to the digest of the applied table after every transaction', async () => {
    const steps = [table(webService([1, 2])), table(webService([2]), [1]), table(webService([]), []), table(webService([1, 2, 3]))];
    for (const t of steps) {
      await nft.apply(t);
      expect(await kernelDigest()).toBe(renderedDigest(t));
    }
    await nft.reconcile(steps[0]!);
    expect(nft.lastApply.mode).toBe('full');
    expect(await kernelDigest()).toBe(renderedDigest(steps[0]!));
  });

  it('keeps an established connection flowing across an atomic rebuild and an adoption', async () => {
    await nft.apply(table(webService([1, 2, 3])));
    const child = spawnIn(ns.client!, [process.execPath, '-e', KEEPALIVE_CLIENT, `http://${VIP}/`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const { lines: answers, until } = jsonLines<{ body?: string; port?: number; error?: string }>(child);
    const ask = async () => {
      const n = answers.length;
      child.stdin!.write('go\n');
      await until('an answer from the keep-alive client', () => answers.length > n);
      return answers.at(-1)!;
    };
    try {
      const first = await ask();
      expect(first.error).toBeUndefined();
      await nft.reconcile(table(webService([1, 2, 3]))); // atomic rebuild: the table is replaced in one transaction
      expect(nft.lastApply.mode).toBe('full');
      const second = new NftBackend(ns.client!);
      try {
        await second.apply(table(webService([1, 2, 3])));
        expect(second.lastApply.adoptedBy).toBe('digest');
      } finally {
        second.close();
      }
      const later = await ask();
      // The same TCP connection (same client port) still reaches the same backend.
      expect(later).toEqual(first);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('with the namespace\'s generation, a reconcile rebuilds only after someone else committed there', async () => {
    const watched = new NftBackend(ns.client!, { generations: NftGenerations.of(ns.client!) });
    try {
      await watched.reconcile(table(webService([1, 2])));
      expect(watched.lastApply.mode).toBe('full');
      // Nothing committed since its own transaction: nothing to write, and the generation stays.
      const g = nftGeneration(ns.client!);
      await watched.reconcile(table(webService([1, 2])));
      expect(watched.lastApply.mode).toBe('none');
      expect(nftGeneration(ns.client!)).toBe(g);
      // A changed table at the known generation: only the change is written.
      await watched.reconcile(table(webService([1, 2, 3])));
      expect(watched.lastApply.mode).toBe('incremental');
      // A backend removed by hand commits: the generation moved, so the next reconcile rebuilds and repairs.
      await execIn(ns.client!, ['nft', 'flush map ip meshnet vip-slots-tcp']);
      await watched.reconcile(table(webService([1, 2, 3])));
      expect(watched.lastApply.mode).toBe('full');
      expect(await kernelDigest()).toBe(renderedDigest(table(webService([1, 2, 3]))));
      const results = await requests(`http://${VIP}/`, 9);
      expect(new Set(results.map((r) => r.body!.split(' ')[0]))).toEqual(new Set(['backend-1', 'backend-2', 'backend-3']));
      // A light check (verify): nothing to do while no one else committed; a rebuild after a hand-made change.
      await watched.verify(table(webService([1, 2, 3])));
      expect(watched.lastApply.mode).toBe('none');
      await execIn(ns.client!, ['nft', 'flush map ip meshnet vip-slots-tcp']);
      await watched.verify(table(webService([1, 2, 3])));
      expect(watched.lastApply.mode).toBe('full');
      expect(await kernelDigest()).toBe(renderedDigest(table(webService([1, 2, 3]))));
    } finally {
      watched.close();
    }
  });

  it('keeps the previous ruleset and raises nft\'s message when a transaction fails', async () => {
    const broken = new NftBackend(ns.client!);
    await broken.apply(table(webService([1])));
    // Someone removed the VIP behind meshnet's back: the plan's delete of that element fails.
    await execIn(ns.client!, ['nft', 'delete element ip meshnet service-ips { 10.99.0.10 . tcp . 80 }']);
    const err = await broken.apply(table(webService([1, 2]))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NftApplyError);
    expect((err as NftApplyError).nftMessage).toMatch(/No such file or directory/);
    const slots = await execIn(ns.client!, ['nft', 'list', 'map', 'ip', 'meshnet', 'vip-slots-tcp']);
    expect(slots.stdout).toContain('10.99.0.10 . tcp . 80 . 0 : 10.20.1.2 . 8080');
    expect(slots.stdout).not.toContain('10.99.0.10 . tcp . 80 . 1 '); // nothing of the failed transaction landed
    // The next apply rebuilds the whole table instead of failing on the same stale entry.
    await broken.apply(table(webService([1])));
    expect(broken.lastApply.mode).toBe('full');
    const results = await requests(`http://${VIP}/`, 5);
    expect(results.every((r) => r.ok && r.body!.startsWith('backend-1 '))).toBe(true);
  });

  it('clears the UDP conntrack entry of a removed backend', async () => {
    await nft.reconcile(table(webService([1]), [2])); // another backend object wrote the table meanwhile
    expect(nft.lastApply.mode).toBe('full');
    const send = `const u=require('dgram').createSocket('udp4');u.bind(40000,()=>{u.send('x',53,'${UDP_VIP}');u.on('message',(m)=>{console.log(String(m));process.exit(0)});setTimeout(()=>process.exit(1),2000)})`;
    const first = await execIn(ns.client!, [process.execPath, '-e', send]);
    expect(first.stdout.trim()).toBe('backend-2');
    const before = await execIn(ns.client!, ['conntrack', '-L', '-p', 'udp', '--orig-dst', UDP_VIP], { allowFailure: true });
    expect(before.stdout).toContain(`src=${backendIp(2)}`);
    await nft.apply(table(webService([1]), [1]));
    expect(nft.lastApply.conntrackDeletions).toBeGreaterThanOrEqual(1);
    const after = await execIn(ns.client!, ['conntrack', '-L', '-p', 'udp', '--orig-dst', UDP_VIP], { allowFailure: true });
    expect(after.stdout).not.toContain(`src=${backendIp(2)}`);
    const again = await execIn(ns.client!, [process.execPath, '-e', send]);
    expect(again.stdout.trim()).toBe('backend-1');
    // The agent restarts and meanwhile backend 1 left: the new backend object rebuilds the table
    // (the digests differ) and still clears the flow that pointed at backend 1.
    const restarted = new NftBackend(ns.client!);
    try {
      await restarted.apply(table(webService([1]), [2]));
      expect(restarted.lastApply.adoptedBy).toBe('rebuild');
      expect(restarted.lastApply.conntrackDeletions).toBeGreaterThanOrEqual(1);
      const flows = await execIn(ns.client!, ['conntrack', '-L', '-p', 'udp', '--orig-dst', UDP_VIP], { allowFailure: true });
      expect(flows.stdout).not.toContain(`src=${backendIp(1)}`);
      const afterRestart = await execIn(ns.client!, [process.execPath, '-e', send]);
      expect(afterRestart.stdout.trim()).toBe('backend-2');
    } finally {
      restarted.close();
    }
  });

  it('loads the golden sample table into the kernel and reads back the same table', async () => {
    const golden = readFileSync(new URL('../../src/vip/nft/__golden__/sample-table.nft', import.meta.url), 'utf8');
    await execIn(ns.router!, ['nft', '-f', '-'], { input: golden });
    try {
      const read = await new NftBackend(ns.router!).read();
      const norm = (t: LbTable) =>
        t.services
          .map((s) => ({ ...s, backends: sortedBackends(s.backends.map((b) => (b.port === 0 ? { ...b, port: s.frontend.port } : b))) }))
          .sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(norm(read)).toEqual(norm(SAMPLE_TABLE));
    } finally {
      await execIn(ns.router!, ['nft', 'delete table ip meshnet']);
    }
  });

  it('removes its table on destroy', async () => {
    await nft.destroy();
    const r = await execIn(ns.client!, ['nft', 'list', 'tables']);
    expect(r.stdout).not.toContain('meshnet');
  });
});
