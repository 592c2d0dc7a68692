/**
 * Keeps the resolver's sockets open while no agent runs. A restarting agent used to close every task's
 * 127.0.0.11 sockets, and for the ~1.5 s until the new one bound them again each query met a closed port
 * (the task's resolver gives up at once on the ICMP error). Here a `sleep` process holds copies of every
 * socket: queries that arrive meanwhile wait in the socket's queue, and the next agent takes copies back
 * (pidfd_getfd) and answers them. The agent replaces the keeper whenever its set of sockets changes.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log/logger.js';
import { closeFd, closeOnExecAll, takeFds } from '../runtime/process-fds.js';
import { noteProcessSpawned } from '../sandbox/exec.js';
import { readCmdline, readProcStat } from '../tasks/proc-stat.js';
import { validateNameView, type NameView } from './name-view.js';
import type { SocketFds } from './worker-protocol.js';

/**
 * A namespace's resolver sockets, as descriptors this process owns, with the port they are bound to and the
 * names last served there: a restarted agent answers with those until its first pass hands it the current ones.
 */
export interface HeldSockets {
  port: number;
  fds: SocketFds;
  view?: NameView;
}

/** What the keeper is given to hold: every namespace's sockets, by path. */
export type KeptSockets = readonly (HeldSockets & { path: string })[];

/** The keeper's argv[0], so that it is told apart from any other sleep. */
export const KEEPER_NAME = 'meshnet-dns-keeper';
/** Names the state directory a keeper belongs to (in its environment): one host may run several agents. */
const KEEPER_DIR_ENV = 'MESHNET_DNS_KEEPER_DIR';
const MANIFEST = 'resolver-sockets.json';
/** The keeper's descriptors 0-2 are /dev/null; the sockets follow, UDP then TCP for each namespace. */
const FIRST_FD = 3;

const ManifestSchema = z.object({
  version: z.literal(1),
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
  sockets: z.array(
    z.object({
      path: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      udp: z.number().int().min(FIRST_FD),
      tcp: z.number().int().min(FIRST_FD),
      /** Index into `views`. */
      view: z.number().int().nonnegative().optional(),
    }),
  ),
  /** The name views served, each once (namespaces on the same networks share one); checked at adopt. */
  views: z.array(z.unknown()).default([]),
});
type Manifest = z.infer<typeof ManifestSchema>;

/** The descriptor numbers the keeper will hold `sockets` at, in order. */
export function keeperLayout(sockets: readonly { path: string; port: number }[]): Manifest['sockets'] {
  return sockets.map((s, i) => ({ path: s.path, port: s.port, udp: FIRST_FD + 2 * i, tcp: FIRST_FD + 2 * i + 1 }));
}

/** `layout` with each namespace's view from `views` (by path), every distinct view stored once. */
export function withViews(layout: Manifest['sockets'], views: ReadonlyMap<string, NameView>): Pick<Manifest, 'sockets' | 'views'> {
  const index = new Map<string, number>();
  const stored: unknown[] = [];
  const sockets = layout.map(({ view: _old, ...s }) => {
    const v = views.get(s.path);
    if (v === undefined) return s;
    const key = JSON.stringify(v);
    let i = index.get(key);
    if (i === undefined) {
      i = stored.length;
      stored.push(v);
      index.set(key, i);
    }
    return { ...s, view: i };
  });
  return { sockets, views: stored };
}

function viewsByPath(sockets: KeptSockets): Map<string, NameView> {
  const views = new Map<string, NameView>();
  for (const s of sockets) if (s.view) views.set(s.path, s.view);
  return views;
}

/** Options of the keeper. */
export interface SocketKeeperOptions {
  /** The agent's state directory: the manifest lives there, and it names this agent's keeper. */
  dir: string;
  log: Logger;
  /** How long after a change the keeper is replaced, so that a pass attaching 100 namespaces replaces it once. */
  delayMs?: number;
}

/** The keeper of one agent's resolver sockets. */
export class ResolverSocketKeeper {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private current: { pid: number; startTime: number } | null = null;
  /** Where the current keeper holds each namespace's sockets. */
  private layout: Manifest['sockets'] = [];
  /** The next replacement must start a new keeper (the sockets changed), not only record new views. */
  private respawn = false;
  private closed = false;

  constructor(private readonly opts: SocketKeeperOptions) {
    this.log = opts.log.child({ component: 'dns' });
  }

  private get manifestPath(): string {
    return join(this.opts.dir, MANIFEST);
  }

  /**
   * Copies of the sockets the last agent's keeper holds, by namespace path; empty when there is none or it
   * cannot be read (the resolver then binds afresh, as before). The keeper itself runs on until replaced.
   */
  adopt(): Map<string, HeldSockets> {
    const out = new Map<string, HeldSockets>();
    let manifest: Manifest;
    try {
      manifest = ManifestSchema.parse(JSON.parse(readFileSync(this.manifestPath, 'utf8')));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ event: 'dns.keeper_unreadable', file: this.manifestPath, error: (err as Error).message });
      this.killStrays(null);
      return out;
    }
    if (!this.isKeeper(manifest.pid, manifest.startTime)) {
      this.log.warn({ event: 'dns.keeper_gone', pid: manifest.pid, sockets: manifest.sockets.length });
      this.killStrays(null);
      return out;
    }
    this.current = { pid: manifest.pid, startTime: manifest.startTime };
    this.layout = manifest.sockets.map(({ view: _v, ...s }) => s);
    this.killStrays(manifest.pid);
    let taken: (number | null)[];
    try {
      taken = takeFds(manifest.pid, manifest.sockets.flatMap((s) => [s.udp, s.tcp]));
    } catch (err) {
      this.log.warn({ event: 'dns.keeper_unreadable', pid: manifest.pid, error: (err as Error).message });
      return out;
    }
    const views = manifest.views.map((v) => {
      try {
        return validateNameView(v as NameView);
      } catch {
        // A view this version cannot read: those namespaces wait for the first pass's names.
        return undefined;
      }
    });
    manifest.sockets.forEach((s, i) => {
      const udp = taken[2 * i] ?? null;
      const tcp = taken[2 * i + 1] ?? null;
      const view = s.view === undefined ? undefined : views[s.view];
      if (udp !== null && tcp !== null) out.set(s.path, { port: s.port, fds: { udp, tcp }, ...(view ? { view } : {}) });
      else {
        if (udp !== null) closeFd(udp);
        if (tcp !== null) closeFd(tcp);
      }
    });
    this.log.info({ event: 'dns.sockets_adopted', pid: manifest.pid, sockets: out.size, lost: manifest.sockets.length - out.size });
    return out;
  }

  /**
   * After a short delay (changes that follow share it): replaces the keeper with one holding `sockets()` when
   * the sockets changed, or records the views they serve now when only those changed.
   */
  schedule(sockets: () => KeptSockets, what: 'sockets' | 'views' = 'sockets'): void {
    if (what === 'sockets') this.respawn = true;
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      if (this.respawn || this.current === null) this.keep(sockets());
      else this.recordViews(sockets());
    }, this.opts.delayMs ?? 1000);
    this.timer.unref();
  }

  /** Rewrites the manifest of the running keeper with the views `sockets` carry; its descriptors stay. */
  private recordViews(sockets: KeptSockets): void {
    if (!this.current) return;
    this.writeManifest({ version: 1, ...this.current, ...withViews(this.layout, viewsByPath(sockets)) });
  }

  private writeManifest(manifest: Manifest | null): void {
    try {
      if (manifest) {
        const tmp = `${this.manifestPath}.tmp`;
        writeFileSync(tmp, JSON.stringify(manifest), { mode: 0o600 });
        renameSync(tmp, this.manifestPath);
      } else rmSync(this.manifestPath, { force: true });
    } catch (err) {
      this.log.warn({ event: 'dns.keeper_failed', error: (err as Error).message });
    }
  }

  /** Starts a keeper holding `sockets`, records it, then ends the one before. */
  keep(sockets: KeptSockets): void {
    this.respawn = false;
    const previous = this.current;
    const layout = keeperLayout(sockets);
    let manifest: Manifest | null = null;
    if (sockets.length > 0) {
      let child;
      // The keeper holds the sockets and nothing else the agent happens to have open.
      closeOnExecAll();
      try {
        // argv0 names it in ps and /proc; the environment ties it to this agent's state directory.
        child = spawn('sleep', ['infinity'], {
          argv0: KEEPER_NAME,
          stdio: ['ignore', 'ignore', 'ignore', ...sockets.flatMap((s) => [s.fds.udp, s.fds.tcp])],
          detached: true,
          env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', [KEEPER_DIR_ENV]: this.opts.dir },
        });
      } catch (err) {
        this.log.warn({ event: 'dns.keeper_failed', error: (err as Error).message });
        return;
      }
      noteProcessSpawned();
      child.on('error', (err) => this.log.warn({ event: 'dns.keeper_failed', error: err.message }));
      child.unref();
      const stat = child.pid === undefined ? null : readProcStat(child.pid);
      if (!stat) {
        this.log.warn({ event: 'dns.keeper_failed', error: 'the keeper did not start' });
        return;
      }
      manifest = { version: 1, pid: stat.pid, startTime: stat.startTime, ...withViews(layout, viewsByPath(sockets)) };
    }
    this.writeManifest(manifest);
    this.current = manifest ? { pid: manifest.pid, startTime: manifest.startTime } : null;
    this.layout = manifest ? layout : [];
    if (previous && this.isKeeper(previous.pid, previous.startTime)) process.kill(previous.pid, 'SIGKILL');
    this.log.debug({ event: 'dns.keeper_replaced', pid: manifest?.pid ?? null, sockets: sockets.length });
  }

  /** Stops replacing the keeper; the keeper runs on, holding the sockets for the next agent. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Ends the keeper and forgets it: the sockets close with the last agent's copies (for a node that leaves). */
  release(): void {
    this.close();
    this.killStrays(null);
    rmSync(this.manifestPath, { force: true });
    this.current = null;
  }

  /** Whether `pid` is still the keeper started at `startTime` for this state directory. */
  private isKeeper(pid: number, startTime: number): boolean {
    const stat = readProcStat(pid);
    return stat !== null && stat.startTime === startTime && stat.state !== 'Z' && this.ownsProcess(pid);
  }

  private ownsProcess(pid: number): boolean {
    if (readCmdline(pid)?.[0] !== KEEPER_NAME) return false;
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${KEEPER_DIR_ENV}=${this.opts.dir}`);
    } catch {
      return false;
    }
  }

  /** Ends this agent's keepers other than `keep` (one a crash left between starting it and recording it). */
  private killStrays(keep: number | null): void {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (pid === keep || !this.ownsProcess(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        this.log.info({ event: 'dns.keeper_stray_ended', pid });
      } catch {
        // gone meanwhile
      }
    }
  }
}
