import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { execIn, type ExecResult, spawnIn } from '../sandbox/exec.js';
import { setSysctl } from '../sandbox/sysctl.js';

/** Where every lab puts its namespaces; one folder per lab, named with the owning pid. */
export const LAB_ROOT = '/run/meshnet-lab';
const UNDERLAY_PREFIX = '192.0.2.';
/** The v6 underlay (documentation prefix), given on request only: most labs are v4 only. */
const UNDERLAY6_PREFIX = '2001:db8::';

/** A simulated host: a namespace with eth0 on the underlay bridge. */
export interface LabHost {
  name: string;
  netns: string;
  /** The address its agent advertises: 192.0.2.N, or 2001:db8::N in a lab built with `underlay: 'ipv6'`. */
  underlayIp: string;
  /** Its v6 underlay address, once `addUnderlay6` gave the hosts one. */
  underlayIp6?: string;
  /** This host's own namespace directory (what /run/meshnet/netns is on a real machine). */
  dir: NetnsDir;
}

const live = new Set<Lab>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Synchronous teardown: namespaces are bind mounts, so unmounting them frees every link inside.
  process.on('exit', () => {
    for (const lab of live) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const lab of live) lab.destroySync();
      process.exit(130);
    });
  }
}

/**
 * N simulated hosts joined by an underlay bridge that lives in its own namespace, on TEST-NET-1
 * addresses. Every object lives in namespaces under a folder unique to this lab; `destroy`
 * (also run on exit and on SIGINT/SIGTERM) removes all of it, and `cleanStaleLabs` removes
 * what a killed run left behind.
 */
export class Lab {
  readonly id: string;
  readonly dir: NetnsDir;
  readonly hosts: LabHost[] = [];
  readonly underlay: string;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(
    id: string,
    readonly persistent: boolean,
  ) {
    this.id = id;
    this.dir = new NetnsDir(`${LAB_ROOT}/${id}/netns`);
    mkdirSync(`${LAB_ROOT}/${id}`, { recursive: true });
    // A persistent lab (the demo) outlives this process: no owner pid, no exit hooks.
    if (!persistent) {
      writeFileSync(`${LAB_ROOT}/${id}/owner`, String(process.pid));
      live.add(this);
      installExitHooks();
    } else {
      writeFileSync(`${LAB_ROOT}/${id}/owner`, 'persistent');
    }
    this.underlay = this.dir.create('underlay');
  }

  /** Root folder of this lab (namespaces, per-host folders, anything a user of the lab keeps there). */
  get root(): string {
    return `${LAB_ROOT}/${this.id}`;
  }

  /**
   * Builds a lab with `hosts` hosts named host-a, host-b, ... (max 200). With `persistentId` the lab
   * keeps that id and stays up after this process exits (remove it with `Lab.removePersistent`).
   */
  static async create(hosts: number, opts: { tag?: string; mtu?: number; persistentId?: string; underlay?: 'ipv4' | 'ipv6' } = {}): Promise<Lab> {
    cleanStaleLabs();
    const lab = opts.persistentId
      ? new Lab(opts.persistentId, true)
      : new Lab(`${opts.tag ?? 'lab'}-${process.pid}-${randomBytes(3).toString('hex')}`, false);
    try {
      const ul = Rtnl.open(lab.underlay);
      try {
        await ul.setLink('lo', { up: true });
        await ul.createBridge('ul0', { mtu: opts.mtu ?? 1500 });
        await ul.setLink('ul0', { up: true });
        for (let i = 0; i < hosts; i++) await lab.addHost(ul, i, opts.mtu ?? 1500, opts.underlay ?? 'ipv4');
      } finally {
        ul.close();
      }
      return lab;
    } catch (err) {
      lab.destroySync();
      throw err;
    }
  }

  /** Adds host i; with a v6 underlay its eth0 gets only 2001:db8::N/64 (and the kernel's link-local), no v4. */
  private async addHost(ul: Rtnl, i: number, mtu: number, family: 'ipv4' | 'ipv6'): Promise<void> {
    const name = `host-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`;
    const netns = this.dir.create(name);
    const underlayIp = family === 'ipv6' ? `${UNDERLAY6_PREFIX}${i + 1}` : `${UNDERLAY_PREFIX}${i + 1}`;
    await ul.createVeth(`ul-${i}`, 'eth0', { peerNetns: netns, mtu });
    await ul.setLink(`ul-${i}`, { master: 'ul0', up: true });
    const h = Rtnl.open(netns);
    try {
      await h.setLink('lo', { up: true });
      if (family === 'ipv6') await h.replaceAddress6('eth0', `${underlayIp}/64`);
      else await h.addAddress('eth0', `${underlayIp}/24`);
      await h.setLink('eth0', { up: true });
    } finally {
      h.close();
    }
    setSysctl(netns, 'net.ipv4.ip_forward', 1);
    const dir = new NetnsDir(`${LAB_ROOT}/${this.id}/${name}/netns`);
    this.hosts.push(family === 'ipv6' ? { name, netns, underlayIp, underlayIp6: underlayIp, dir } : { name, netns, underlayIp, dir });
  }

  /** Gives every host a v6 underlay address too (2001:db8::N/64 beside 192.0.2.N), for v6 published ports. */
  async addUnderlay6(): Promise<void> {
    for (const [i, h] of this.hosts.entries()) {
      const ip6 = `${UNDERLAY6_PREFIX}${i + 1}`;
      const r = Rtnl.open(h.netns);
      try {
        await r.replaceAddress6('eth0', `${ip6}/64`);
      } finally {
        r.close();
      }
      h.underlayIp6 = ip6;
    }
  }

  /** Creates a namespace plugged into the underlay at `ip` (an outside client of the cluster; null: none), at `ip6` too when given. */
  async addClient(name: string, ip: string | null, ip6?: string): Promise<string> {
    const netns = this.dir.create(name);
    const ul = Rtnl.open(this.underlay);
    try {
      const port = `ul-${name}`.slice(0, 15);
      await ul.createVeth(port, 'eth0', { peerNetns: netns });
      await ul.setLink(port, { master: 'ul0', up: true });
    } finally {
      ul.close();
    }
    const c = Rtnl.open(netns);
    try {
      await c.setLink('lo', { up: true });
      if (ip !== null) await c.addAddress('eth0', `${ip}/24`);
      if (ip6) await c.replaceAddress6('eth0', `${ip6}/64`);
      await c.setLink('eth0', { up: true });
    } finally {
      c.close();
    }
    return netns;
  }

  /** Every namespace file of this lab (hosts, underlay, clients, and each host's own namespaces). */
  namespaces(): string[] {
    return [...this.dir.list().map((n) => this.dir.path(n)), ...this.hosts.flatMap((h) => h.dir.list().map((n) => h.dir.path(n)))];
  }

  /** Creates an extra namespace in this lab (a client), or on a host (a task) when `host` is given. */
  netns(name: string, host?: number): string {
    return host === undefined ? this.dir.create(name) : this.hosts[host]!.dir.create(name);
  }

  /** Runs a command inside a lab namespace. */
  exec(netns: string, argv: string[], opts: { input?: string; timeoutMs?: number; allowFailure?: boolean } = {}): Promise<ExecResult> {
    return execIn(netns, argv, { timeoutMs: 30_000, ...opts });
  }

  /** Starts a long-running process in a lab namespace; it is killed on destroy. */
  spawn(netns: string, argv: string[], env?: Record<string, string>): ChildProcess {
    const child = spawnIn(netns, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Waits until `url` answers from inside `netns` (servers start slowly on a loaded 2-core machine). */
  async waitForHttp(netns: string, url: string, timeoutMs = 30_000): Promise<void> {
    const tries = Math.ceil(timeoutMs / 200);
    const script = `for i in $(seq ${tries}); do curl -s -m 1 -o /dev/null "$1" && exit 0; sleep 0.2; done; exit 1`;
    const r = await execIn(netns, ['sh', '-c', script, 'wait', url], { allowFailure: true, timeoutMs: timeoutMs + 5_000 });
    if (r.code !== 0) throw new Error(`${url} did not answer from ${netns} within ${timeoutMs} ms`);
  }

  /** Removes everything the lab made. */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** Synchronous teardown, usable from exit handlers. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children) c.kill('SIGKILL');
    killProcessesIn(this.namespaces());
    for (const h of this.hosts) h.dir.removeAll();
    this.dir.removeAll();
    rmSync(`${LAB_ROOT}/${this.id}`, { recursive: true, force: true });
    live.delete(this);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILLs every process whose network namespace is one of `nsPaths` (agents' tasks run detached,
 * so killing their parent does not end them). Returns how many it killed.
 */
export function killProcessesIn(nsPaths: readonly string[]): number {
  const ids = new Set<string>();
  for (const p of nsPaths) {
    try {
      const st = statSync(p);
      ids.add(`${st.dev}:${st.ino}`);
    } catch {
      // already gone
    }
  }
  if (ids.size === 0) return 0;
  let killed = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const st = statSync(`/proc/${pid}/ns/net`);
      if (ids.has(`${st.dev}:${st.ino}`)) {
        process.kill(Number(pid), 'SIGKILL');
        killed++;
      }
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return killed;
}

/** Removes every namespace and folder of lab `id` (for persistent labs); missing is fine. */
export function removeLab(id: string): void {
  const root = `${LAB_ROOT}/${id}`;
  if (!existsSync(root)) return;
  const files: string[] = [];
  for (const sub of readdirSync(root)) {
    const d = `${root}/${sub}/netns`;
    if (existsSync(d)) for (const n of readdirSync(d)) files.push(`${d}/${n}`);
  }
  if (existsSync(`${root}/netns`)) for (const n of readdirSync(`${root}/netns`)) files.push(`${root}/netns/${n}`);
  killProcessesIn(files);
  for (const sub of readdirSync(root)) {
    if (existsSync(`${root}/${sub}/netns`)) new NetnsDir(`${root}/${sub}/netns`).removeAll();
  }
  new NetnsDir(`${root}/netns`).removeAll();
  rmSync(root, { recursive: true, force: true });
}

/** Removes labs whose owning process is gone (a test run that was killed). Returns the ids removed. */
export function cleanStaleLabs(): string[] {
  if (!existsSync(LAB_ROOT)) return [];
  const removed: string[] = [];
  for (const id of readdirSync(LAB_ROOT)) {
    const ownerFile = `${LAB_ROOT}/${id}/owner`;
    const ownerText = existsSync(ownerFile) ? readFileSync(ownerFile, 'utf8') : '';
    if (ownerText === 'persistent') continue;
    const owner = Number(ownerText);
    if (ownerText !== '' && Number.isFinite(owner) && pidAlive(owner)) continue;
    removeLab(id);
    removed.push(id);
  }
  return removed;
}
