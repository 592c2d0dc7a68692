import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { execIn, spawnIn } from '../../src/sandbox/exec.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { MNT_DETACH, umount2 } from '../../src/sandbox/libc.js';
import type { MeshNodeInput } from '../../src/mesh/mesh-input.js';

/** Node n1 of the mesh tests: gwbridge `gwbridge` on 172.18.0.0/16, the ingress sandbox at 172.18.0.2 and 10.255.0.2. */
export function labMeshNode(gwbridge: string): MeshNodeInput {
  return {
    nodeId: 'n1',
    gwbridge: { name: gwbridge, subnet: '172.18.0.0/16' },
    sbox: { gwbridgeAddress: '172.18.0.2', ingressAddress: '10.255.0.2' },
    ingressSubnet: '10.255.0.0/16',
  };
}

/**
 * Throwaway namespaces for the mesh's integration tests and benchmark, under a folder unique
 * to this run. Links are made with `ip`, as the brief for tests allows; the agent's own
 * topology code lives elsewhere.
 */
export class MeshLab {
  readonly dir: NetnsDir;
  private readonly names: string[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(prefix: string) {
    this.dir = new NetnsDir(`/run/meshnet-test/${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`);
  }

  /** Creates a namespace with loopback up; returns its path. */
  async netns(name: string): Promise<string> {
    const path = this.dir.create(name);
    this.names.push(name);
    await this.ip(path, 'link set lo up');
    return path;
  }

  /** Runs `ip <args>` inside the namespace. */
  async ip(netns: string, args: string): Promise<void> {
    await execIn(netns, ['ip', ...args.split(' ')]);
  }

  /** A veth pair between two namespaces, addressed and up. */
  async veth(a: { netns: string; name: string; cidr?: string }, b: { netns: string; name: string; cidr?: string }): Promise<void> {
    await execIn(a.netns, ['ip', 'link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.netns]);
    for (const end of [a, b]) {
      if (end.cidr) await this.ip(end.netns, `addr add ${end.cidr} dev ${end.name}`);
      await this.ip(end.netns, `link set ${end.name} up`);
    }
  }

  /**
   * Starts a process in a namespace, in its own process group (so its children die with it),
   * and waits until it prints `readyLine` or, when `ready` is a function, until that resolves true.
   */
  async start(netns: string, argv: string[], ready: string | (() => Promise<boolean>) = 'ready'): Promise<ChildProcess> {
    const child = spawnIn(netns, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.children.add(child);
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`${argv[0]} exited with ${code}: ${err}`))),
    );
    exited.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    if (typeof ready === 'string') {
      let out = '';
      await Promise.race([
        exited,
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${argv[0]} did not get ready in 10 s: ${err}`)), 10_000);
          child.stdout!.on('data', (b: Buffer) => {
            out += b.toString();
            if (out.includes(ready)) {
              clearTimeout(timer);
              resolve();
            }
          });
        }),
      ]);
    } else {
      for (;;) {
        if (child.exitCode !== null) await exited;
        if (await ready()) break;
        if (Date.now() > deadline) throw new Error(`${argv[0]} did not get ready in 10 s: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    child.stdout!.resume();
    return child;
  }

  /** Stops every process and removes every namespace (safe to call twice). */
  async destroy(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      }
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
    this.children.clear();
    for (const name of this.names.splice(0)) this.dir.delete(name);
    // NetnsDir made the folder a shared bind mount of itself: undo that before removing it.
    umount2(this.dir.dir, MNT_DETACH);
    rmSync(this.dir.dir, { recursive: true, force: true });
  }
}

/** Sends one UDP datagram from inside `netns` and returns the first reply ('' after 2 s without one). */
export async function udpExchange(netns: string, address: string, port: number, text: string): Promise<string> {
  const script = `
const s = require('node:dgram').createSocket('udp4');
const t = setTimeout(() => process.exit(1), 2000);
s.on('message', (m) => { process.stdout.write(m.toString()); clearTimeout(t); s.close(); });
s.send(${JSON.stringify(text)}, ${port}, ${JSON.stringify(address)});`;
  const r = await execIn(netns, ['node', '-e', script], { allowFailure: true, timeoutMs: 5000 });
  return r.stdout.trim();
}

/**
 * A stand-in server: answers HTTP on each TCP port with "<name> <port> <client address>" and
 * echoes UDP datagrams on each UDP port prefixed with the same.
 */
export function standInServerArgv(name: string, tcpPorts: number[], udpPorts: number[] = []): string[] {
  const script = `
const http = require('node:http'); const dgram = require('node:dgram');
let pending = ${tcpPorts.length + udpPorts.length};
const up = () => { if (--pending === 0) console.log('ready'); };
for (const p of ${JSON.stringify(tcpPorts)}) {
  http.createServer((q, s) => s.end(${JSON.stringify(name)} + ' ' + p + ' ' + q.socket.remoteAddress + '\\n')).listen(p, '0.0.0.0', up);
}
for (const p of ${JSON.stringify(udpPorts)}) {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(${JSON.stringify(name)} + ' ' + p + ' ' + r.address + ' ' + m.toString(), r.port, r.address));
  u.bind(p, '0.0.0.0', up);
}`;
  return ['node', '-e', script];
}
