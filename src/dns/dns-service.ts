import { access } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { silentLogger, type Logger } from '../log/logger.js';
import { compiledModuleUrl } from '../runtime/compiled-module.js';
import { DEFAULT_TTL_SECONDS } from './answer-table.js';
import { addDnsCounters, emptyDnsCounters, type DnsCounters } from './dns-counters.js';
import { DnsAttachError, DnsNamespaceStateError, DnsServiceClosedError, InvalidDnsInputError } from './errors.js';
import { parseUpstreams } from './forwarder.js';
import { validateNameView, type NameView } from './name-view.js';
import { RESOLVER_ADDRESS } from './namespace-server.js';
import { stableResolverPort } from './resolver-port.js';
import { closePair, dupPair } from './sockets.js';
import { tcpLimits, type TcpLimits } from './tcp-session.js';
import type { SocketFds, WorkerMessage, WorkerReply, WorkerRequest, WorkerSettings } from './worker-protocol.js';
import type { HeldSockets, KeptSockets } from './socket-keeper.js';

/** Options of the resolver service. */
export interface DnsServiceOptions {
  /** Host nameservers for names that are not ours (`ip` or `ip:port`, at most 3, tried in order). */
  upstreams: string[];
  /** TTL of our answers; default 5 s. */
  ttlSeconds?: number;
  /** Worker threads serving all namespaces; default 2 (one per core here). */
  workers?: number;
  /** Per-try upstream timeout; default 2000 ms (two tries fit in a stub resolver's 5 s). */
  forwardTimeoutMs?: number;
  /** Forwards in flight per namespace (TCP retries included) before SERVFAIL; default 256. */
  maxConcurrentForwards?: number;
  /**
   * Port on 127.0.0.11 in each namespace unless attach() says otherwise: 0 (the default) lets
   * the kernel pick one per namespace, to be reached through resolverNatRules; 53 serves the
   * standard port directly, and the task then cannot bind :53 itself.
   */
  port?: number;
  /** Limits of the TCP service per namespace. */
  tcp?: Partial<TcpLimits>;
  /** Where worker deaths, restarts and socket errors are logged; default silent. */
  log?: Logger;
  /**
   * Sockets bound by an agent before this one (ResolverSocketKeeper.adopt), by namespace path: an attach
   * of such a namespace serves them instead of binding, so queries that waited in them are answered.
   */
  held?: ReadonlyMap<string, HeldSockets>;
  /**
   * Called when the set of sockets the service holds changes, or the names one serves (ResolverSocketKeeper.schedule):
   * the keeper holds the sockets, and records the names for the next agent to answer with at once.
   */
  onSocketsChanged?: (what: 'sockets' | 'views') => void;
}

/** Options of one attach. */
export interface AttachOptions {
  /** Overrides DnsServiceOptions.port for this namespace. */
  port?: number;
}

/** The outcome of attach: the port UDP and TCP listen on (0 when detached before it was served). */
export interface Attached {
  port: number;
}

interface Waiter {
  settle: (reply: WorkerReply) => void;
  /** The worker died before it answered. */
  died: () => void;
}

interface WorkerSlot {
  index: number;
  /** null while the worker is down and its restart is pending. */
  worker: Worker | null;
  startedAt: number;
  namespaces: number;
  waiting: Map<number, Waiter>;
  backoff: IBackoff<unknown> | undefined;
  restartTimer: NodeJS.Timeout | null;
  /** The worker's counters as last read: kept when it dies, so the service's totals never go down. */
  lastCounters: DnsCounters;
}

/** A namespace being served; `slot` is null until the workers have started. */
interface Served {
  slot: WorkerSlot | null;
  latest: NameView;
  /** The port asked for; 0: any. */
  wanted: number;
  /** The port bound, once bound; a restarted worker binds it again so the NAT rules stay true. */
  port: number | null;
  /** This thread's copies of the namespace's sockets once bound: a restarted worker serves these same sockets. */
  fds: SocketFds | null;
  /** Served from an earlier agent's sockets with the names it last served, until an attach hands the current ones. */
  early: boolean;
  detached: boolean;
  ready: Promise<number>;
  resolve: (port: number) => void;
  reject: (err: Error) => void;
}

/** A worker that stayed up this long had a healthy life: its next death restarts it at once again. */
const HEALTHY_UPTIME_MS = 60_000;

function validPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidDnsInputError(`${what} ${port} must be an integer from 0 (any) to 65535`);
  return port;
}

/**
 * The embedded resolver for every task namespace of this host. A small pool of worker threads
 * serves all namespaces (a worker costs about 8.5 MB; a namespace adds only its sockets and
 * answer table), each namespace pinned to the least-loaded worker when attached. A worker that
 * dies is started again, with backoff, and the namespaces it served are attached to it again
 * from the last view given, on the port they had: the caller does nothing.
 */
export class DnsService {
  private readonly settings: WorkerSettings;
  private readonly workerCount: number;
  private readonly defaultPort: number;
  private readonly log: Logger;
  // cockatiel's jittered exponential backoff: a worker that dies at once again must not spin a core.
  private readonly backoff = new ExponentialBackoff({ initialDelay: 100, maxDelay: 10_000 });
  private slots: WorkerSlot[] | null = null;
  private starting: Promise<WorkerSlot[]> | null = null;
  private readonly owner = new Map<string, Served>();
  private nextReq = 1;
  private closed = false;
  /** Counts of workers that died, as last read from them. */
  private readonly retired = emptyDnsCounters();
  /** Sockets of an earlier agent that no attach has claimed yet. */
  private readonly held: Map<string, HeldSockets>;
  private readonly onSocketsChanged: (what: 'sockets' | 'views') => void;

  constructor(opts: DnsServiceOptions) {
    const ttl = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 86400) throw new InvalidDnsInputError(`ttlSeconds ${ttl} must be an integer from 0 to 86400`);
    const workers = opts.workers ?? 2;
    if (!Number.isInteger(workers) || workers < 1 || workers > 16) throw new InvalidDnsInputError(`workers ${workers} must be an integer from 1 to 16`);
    this.workerCount = workers;
    this.defaultPort = validPort(opts.port ?? 0, 'port');
    this.log = (opts.log ?? silentLogger()).child({ component: 'dns' });
    this.held = new Map(opts.held ?? []);
    this.onSocketsChanged = opts.onSocketsChanged ?? (() => undefined);
    this.settings = {
      ttlSeconds: ttl,
      upstreams: parseUpstreams(opts.upstreams),
      forwardTimeoutMs: opts.forwardTimeoutMs ?? 2000,
      maxConcurrentForwards: opts.maxConcurrentForwards ?? 256,
      address: RESOLVER_ADDRESS,
      tcp: tcpLimits(opts.tcp),
    };
  }

  private start(): Promise<WorkerSlot[]> {
    if (this.slots) return Promise.resolve(this.slots);
    this.starting ??= (async () => {
      // The libuv threadpool starts on first use, in the namespace of whichever thread uses
      // it first: use it here, on the main thread at home, before any worker steps out.
      await access('/');
      const slots = Array.from({ length: this.workerCount }, (_, index): WorkerSlot => {
        const slot: WorkerSlot = { index, worker: null, startedAt: 0, namespaces: 0, waiting: new Map(), backoff: undefined, restartTimer: null, lastCounters: emptyDnsCounters() };
        this.spawn(slot);
        return slot;
      });
      this.slots = slots;
      return slots;
    })();
    return this.starting;
  }

  private spawn(slot: WorkerSlot): void {
    const worker = new Worker(compiledModuleUrl(import.meta.url, './dns-worker.js'), { workerData: this.settings });
    slot.worker = worker;
    slot.startedAt = Date.now();
    worker.on('message', (m: WorkerMessage) => this.onMessage(slot, m));
    worker.on('error', (err) => this.onWorkerDown(slot, worker, err));
    worker.on('exit', (code) => this.onWorkerDown(slot, worker, new Error(`worker exited with code ${code}`)));
  }

  private onMessage(slot: WorkerSlot, m: WorkerMessage): void {
    if (m.kind === 'log') {
      this.log[m.level]({ ...m.fields, worker: slot.index });
      return;
    }
    const w = slot.waiting.get(m.reqId);
    if (!w) return;
    slot.waiting.delete(m.reqId);
    w.settle(m);
  }

  private onWorkerDown(slot: WorkerSlot, worker: Worker, err: Error): void {
    // 'error' and 'exit' both come for one death; a replaced worker's late events are old news.
    if (this.closed || slot.worker !== worker) return;
    slot.worker = null;
    void worker.terminate();
    // What it counted since it was last asked is lost with it; what was read is kept.
    addDnsCounters(this.retired, slot.lastCounters);
    slot.lastCounters = emptyDnsCounters();
    if (Date.now() - slot.startedAt >= HEALTHY_UPTIME_MS) slot.backoff = undefined;
    slot.backoff = slot.backoff ? slot.backoff.next(undefined) : this.backoff.next();
    const delayMs = Math.round(slot.backoff.duration);
    this.log.error({ event: 'dns.worker_died', worker: slot.index, error: err.message, namespaces: slot.namespaces, restartInMs: delayMs });
    const waiting = [...slot.waiting.values()];
    slot.waiting.clear();
    for (const w of waiting) w.died();
    slot.restartTimer = setTimeout(() => this.restart(slot), delayMs);
  }

  private restart(slot: WorkerSlot): void {
    slot.restartTimer = null;
    if (this.closed) return;
    this.spawn(slot);
    let namespaces = 0;
    for (const [path, entry] of this.owner) {
      if (entry.slot !== slot) continue;
      this.sendAttach(slot, path, entry);
      namespaces++;
    }
    this.log.info({ event: 'dns.worker_restarted', worker: slot.index, namespaces });
  }

  /** Posts a request; resolves with the reply, or null when the worker died first. */
  private request(slot: WorkerSlot, req: Exclude<WorkerRequest, { op: 'update' | 'attach' }>): Promise<WorkerReply | null> {
    const worker = slot.worker;
    if (!worker) return Promise.resolve(null);
    return new Promise((resolve) => {
      slot.waiting.set(req.reqId, { settle: resolve, died: () => resolve(null) });
      worker.postMessage(req);
    });
  }

  /**
   * Asks the slot's worker to serve `path`. A death before the answer needs nothing here: the
   * restart sends the attach again. After a restart the old port is asked for again; if it
   * was the kernel's pick and is now taken, any port is taken and the change logged.
   */
  private sendAttach(slot: WorkerSlot, path: string, entry: Served): void {
    const worker = slot.worker;
    if (!worker) return;
    const reqId = this.nextReq++;
    const port = entry.port ?? entry.wanted;
    // The worker owns what it is sent (node closes it with the socket); this thread keeps its own copies.
    // Should the worker die before it reads the request, these two stay open: a rare leak, never a close of
    // a number that may by then be another file's.
    let sent: SocketFds | undefined;
    if (entry.fds) {
      try {
        sent = dupPair(entry.fds);
      } catch (err) {
        this.log.warn({ event: 'dns.sockets_not_reused', netns: path, error: (err as Error).message });
        this.dropFds(entry);
      }
    }
    slot.waiting.set(reqId, {
      settle: (reply) => {
        if (reply.ok) {
          if (entry.port !== null && entry.port !== reply.port) {
            this.log.warn({ event: 'dns.port_changed', netns: path, from: entry.port, to: reply.port });
          }
          entry.port = reply.port ?? port;
          this.keepFds(entry, reply.fds);
          entry.resolve(entry.port);
          return;
        }
        if (sent) {
          // The sockets handed over could not be served (closed by the worker): bind afresh.
          this.log.warn({ event: 'dns.sockets_not_reused', netns: path, error: reply.error });
          this.dropFds(entry);
          if (!entry.detached) {
            this.sendAttach(slot, path, entry);
            return;
          }
        }
        if (entry.port !== null) {
          if (entry.wanted === 0 && !entry.detached) {
            entry.port = null;
            this.sendAttach(slot, path, entry);
            return;
          }
          this.log.error({ event: 'dns.reattach_failed', netns: path, port: entry.port, error: reply.error });
        }
        entry.reject(new Error(reply.error ?? 'unknown worker error'));
      },
      died: () => undefined,
    });
    // Any port will do: the namespace's stable one first, so a restart finds its NAT rule already right.
    const prefer = port === 0 ? stableResolverPort(path) : undefined;
    worker.postMessage({ op: 'attach', reqId, path, view: entry.latest, port, ...(prefer !== undefined ? { prefer } : {}), ...(sent ? { fds: sent } : {}) } satisfies WorkerRequest);
  }

  /** Takes the copies a worker made of a namespace's sockets (closing them when the namespace was detached meanwhile). */
  private keepFds(entry: Served, fds: SocketFds | undefined): void {
    if (!fds) return;
    if (entry.detached || this.closed) {
      closePair(fds);
      return;
    }
    const fresh = entry.fds === null;
    // Copies of sockets held already (a worker served them again) replace the old copies of the same sockets.
    if (entry.fds) {
      closePair(entry.fds);
    }
    entry.fds = fds;
    if (fresh) this.onSocketsChanged('sockets');
  }

  private dropFds(entry: Served): void {
    if (!entry.fds) return;
    closePair(entry.fds);
    entry.fds = null;
    this.onSocketsChanged('sockets');
  }

  /**
   * Starts answering on 127.0.0.11 inside the namespace at `netnsPath` with the names of `view`.
   * Resolves to the port bound (UDP and TCP alike), which the namespace's NAT rules (resolverNatRules)
   * must map 127.0.0.11:53 to: by default the namespace's stable port (stableResolverPort), or one the
   * kernel picked when something in the namespace holds that one.
   */
  async attach(netnsPath: string, view: NameView, opts: AttachOptions = {}): Promise<Attached> {
    if (this.closed) throw new DnsServiceClosedError('closed');
    const valid = validateNameView(view);
    const wanted = validPort(opts.port ?? this.defaultPort, 'port');
    const served = this.owner.get(netnsPath);
    if (served?.early) {
      // Answering since start from an earlier agent's sockets and names: from now on with these names.
      served.early = false;
      this.update(netnsPath, valid);
      try {
        return { port: await served.ready };
      } catch (err) {
        if (err instanceof DnsServiceClosedError) throw err;
        throw new DnsAttachError(netnsPath, (err as Error).message);
      }
    }
    if (served) throw new DnsNamespaceStateError(netnsPath, 'attached');
    // Registered before the first await, so update() and detach() right after attach() work.
    let resolve!: (port: number) => void;
    let reject!: (err: Error) => void;
    const ready = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry: Served = { slot: null, latest: valid, wanted, port: null, fds: null, early: false, detached: false, ready, resolve, reject };
    // An earlier agent's sockets for this namespace: served as they are, on their port, unless another port is asked for.
    const held = this.held.get(netnsPath);
    if (held) {
      this.held.delete(netnsPath);
      if (wanted === 0 || wanted === held.port) {
        entry.fds = held.fds;
        entry.port = held.port;
      } else {
        closePair(held.fds);
        this.onSocketsChanged('sockets');
      }
    }
    this.owner.set(netnsPath, entry);
    try {
      const slots = await this.start();
      if (entry.detached) return { port: 0 };
      // A worker waiting for its restart takes namespaces too: it will serve them when it is back.
      const slot = [...slots].sort((a, b) => a.namespaces - b.namespaces)[0]!;
      entry.slot = slot;
      slot.namespaces++;
      this.sendAttach(slot, netnsPath, entry);
      return { port: await entry.ready };
    } catch (err) {
      if (this.owner.get(netnsPath) === entry) this.owner.delete(netnsPath);
      if (entry.slot) entry.slot.namespaces--;
      if (err instanceof DnsServiceClosedError) throw err;
      throw new DnsAttachError(netnsPath, (err as Error).message);
    }
  }

  /** The port the resolver listens on in a served namespace; undefined until bound. */
  portOf(netnsPath: string): number | undefined {
    return this.owner.get(netnsPath)?.port ?? undefined;
  }

  /** Replaces the names a served namespace sees; answers follow at once (clients within the TTL). Returns whether they differ. */
  update(netnsPath: string, view: NameView): boolean {
    const valid = validateNameView(view);
    const entry = this.owner.get(netnsPath);
    if (!entry) throw new DnsNamespaceStateError(netnsPath, 'not attached');
    // A periodic check hands the same names again: nothing to send, and nothing to report as a change.
    if (entry.latest === valid || JSON.stringify(entry.latest) === JSON.stringify(valid)) return false;
    entry.latest = valid;
    // Not yet sent to a worker, or the worker is down: the (re)attach will carry this view.
    entry.slot?.worker?.postMessage({ op: 'update', path: netnsPath, view: valid } satisfies WorkerRequest);
    this.onSocketsChanged('views');
    return true;
  }

  /** Stops answering inside the namespace (closes its sockets); unknown paths are fine. */
  async detach(netnsPath: string): Promise<void> {
    const entry = this.owner.get(netnsPath);
    if (!entry) {
      this.releaseHeld(netnsPath);
      return;
    }
    this.owner.delete(netnsPath);
    entry.detached = true;
    // An attach() still waiting (say, for a worker's restart that will now skip it) ends here.
    entry.resolve(entry.port ?? 0);
    const slot = entry.slot;
    if (slot) {
      slot.namespaces--;
      // The worker finishes a pending attach of this path before it handles the detach; a dead
      // worker's sockets are gone already.
      await this.request(slot, { op: 'detach', reqId: this.nextReq++, path: netnsPath });
    }
    this.dropFds(entry);
  }

  /** Closes an earlier agent's sockets for `netnsPath` that no attach claimed. */
  private releaseHeld(netnsPath: string): void {
    const held = this.held.get(netnsPath);
    if (!held) return;
    this.held.delete(netnsPath);
    closePair(held.fds);
    this.onSocketsChanged('sockets');
  }

  /**
   * Starts answering at once in every namespace whose earlier sockets came with the names last served there,
   * before the store is even open: queries that waited through the restart are answered with those names, and
   * the first pass's attach switches each to the current ones. Resolves to how many namespaces it serves.
   */
  async serveHeld(): Promise<number> {
    if (this.closed) throw new DnsServiceClosedError('closed');
    const slots = await this.start();
    let served = 0;
    for (const [path, held] of [...this.held]) {
      if (!held.view || this.owner.has(path)) continue;
      this.held.delete(path);
      let resolve!: (port: number) => void;
      let reject!: (err: Error) => void;
      const ready = new Promise<number>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Nobody may await it (no attach comes for a namespace gone meanwhile): a failure is logged, not thrown.
      ready.catch((err: Error) => this.log.warn({ event: 'dns.early_serve_failed', netns: path, error: err.message }));
      const slot = [...slots].sort((a, b) => a.namespaces - b.namespaces)[0]!;
      const entry: Served = { slot, latest: held.view, wanted: 0, port: held.port, fds: held.fds, early: true, detached: false, ready, resolve, reject };
      this.owner.set(path, entry);
      slot.namespaces++;
      this.sendAttach(slot, path, entry);
      served++;
    }
    return served;
  }

  /**
   * Closes every earlier agent's socket no attach has claimed, served early or not: called once the first pass
   * has attached every namespace this node serves, so that a namespace gone while no agent ran lets go of its
   * sockets. Resolves to how many it let go.
   */
  async releaseUnclaimed(): Promise<number> {
    const paths = [...this.held.keys()];
    for (const p of paths) this.releaseHeld(p);
    const early = [...this.owner].filter(([, e]) => e.early).map(([p]) => p);
    for (const p of early) await this.detach(p);
    return paths.length + early.length;
  }

  /** Every socket the service holds (served, or an earlier agent's not yet claimed) and its names, for the keeper. */
  heldSockets(): KeptSockets {
    const out: (HeldSockets & { path: string })[] = [];
    for (const [path, e] of this.owner) if (e.fds && e.port !== null) out.push({ path, port: e.port, fds: e.fds, view: e.latest });
    for (const [path, h] of this.held) out.push({ path, ...h });
    return out;
  }

  /**
   * Queries and answers (by rcode) since the service started, summed over its workers, for /metrics.
   * Monotonic: a worker that died adds what it had counted when it was last asked.
   */
  async counters(): Promise<DnsCounters> {
    const sum = addDnsCounters(emptyDnsCounters(), this.retired);
    if (this.closed || !this.slots) return sum;
    await Promise.all(
      this.slots.map(async (slot) => {
        const reply = await this.request(slot, { op: 'stats', reqId: this.nextReq++ });
        if (reply?.counters) slot.lastCounters = reply.counters;
        addDnsCounters(sum, slot.lastCounters);
      }),
    );
    return sum;
  }

  /** Namespaces currently served. */
  attached(): string[] {
    return [...this.owner.keys()];
  }

  /** Closes every socket and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    const slots = this.slots ?? (this.starting ? await this.starting : []);
    await Promise.all(slots.map((s) => this.request(s, { op: 'close', reqId: this.nextReq++ })));
    this.closed = true;
    for (const s of slots) if (s.restartTimer) clearTimeout(s.restartTimer);
    for (const entry of this.owner.values()) {
      entry.reject(new DnsServiceClosedError('closed'));
      // This thread's copies; a keeper's stay open, and the next agent serves them.
      if (entry.fds) {
        closePair(entry.fds);
        entry.fds = null;
      }
    }
    this.owner.clear();
    for (const h of this.held.values()) {
      closePair(h.fds);
    }
    this.held.clear();
    await Promise.all(slots.map((s) => s.worker?.terminate()));
  }
}
