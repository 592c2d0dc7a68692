import { access } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { compiledModuleUrl } from '../runtime/compiled-module.js';
import { DEFAULT_TTL_SECONDS } from './answer-table.js';
import { DnsAttachError, DnsNamespaceStateError, DnsServiceClosedError, InvalidDnsInputError } from './errors.js';
import { parseUpstreams } from './forwarder.js';
import { validateNameView, type NameView } from './name-view.js';
import { RESOLVER_ADDRESS, RESOLVER_PORT } from './namespace-server.js';
import type { WorkerReply, WorkerRequest, WorkerSettings } from './worker-protocol.js';

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
  /** Forwards in flight per namespace before SERVFAIL; default 256. */
  maxConcurrentForwards?: number;
  /** Port inside each namespace; default 53 (other values only for tests of the service itself). */
  port?: number;
}

interface WorkerSlot {
  worker: Worker;
  namespaces: number;
  failed: Error | null;
}

/** A namespace being served; `slot` is null until the workers have started. */
interface Served {
  slot: WorkerSlot | null;
  latest: NameView;
  detached: boolean;
}

/**
 * The embedded resolver for every task namespace of this host. A small pool of worker threads
 * serves all namespaces (a worker costs about 8.5 MB; a namespace adds only its sockets and
 * answer table), each namespace pinned to the least-loaded worker when attached.
 */
export class DnsService {
  private readonly settings: WorkerSettings;
  private readonly workerCount: number;
  private slots: WorkerSlot[] | null = null;
  private starting: Promise<WorkerSlot[]> | null = null;
  private readonly owner = new Map<string, Served>();
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextReq = 1;
  private closed = false;

  constructor(opts: DnsServiceOptions) {
    const ttl = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 86400) throw new InvalidDnsInputError(`ttlSeconds ${ttl} must be an integer from 0 to 86400`);
    const workers = opts.workers ?? 2;
    if (!Number.isInteger(workers) || workers < 1 || workers > 16) throw new InvalidDnsInputError(`workers ${workers} must be an integer from 1 to 16`);
    this.workerCount = workers;
    this.settings = {
      ttlSeconds: ttl,
      upstreams: parseUpstreams(opts.upstreams),
      forwardTimeoutMs: opts.forwardTimeoutMs ?? 2000,
      maxConcurrentForwards: opts.maxConcurrentForwards ?? 256,
      address: RESOLVER_ADDRESS,
      port: opts.port ?? RESOLVER_PORT,
    };
  }

  private start(): Promise<WorkerSlot[]> {
    if (this.slots) return Promise.resolve(this.slots);
    this.starting ??= (async () => {
      // The libuv threadpool starts on first use, in the namespace of whichever thread uses
      // it first: use it here, on the main thread at home, before any worker steps out.
      await access('/');
      const url = compiledModuleUrl(import.meta.url, './dns-worker.js');
      const slots = Array.from({ length: this.workerCount }, () => {
        const slot: WorkerSlot = { worker: new Worker(url, { workerData: this.settings }), namespaces: 0, failed: null };
        slot.worker.on('message', (r: WorkerReply) => this.onReply(r));
        slot.worker.on('error', (err) => this.onWorkerDown(slot, err));
        slot.worker.on('exit', (code) => this.onWorkerDown(slot, new Error(`worker exited with code ${code}`)));
        return slot;
      });
      this.slots = slots;
      return slots;
    })();
    return this.starting;
  }

  private onReply(r: WorkerReply): void {
    const w = this.waiting.get(r.reqId);
    if (!w) return;
    this.waiting.delete(r.reqId);
    if (r.ok) w.resolve();
    else w.reject(new Error(r.error ?? 'unknown worker error'));
  }

  private onWorkerDown(slot: WorkerSlot, err: Error): void {
    if (slot.failed || this.closed) return;
    slot.failed = err;
    process.stderr.write(`${JSON.stringify({ component: 'dns', event: 'dns_worker_down', error: err.message })}\n`);
    // Its namespaces are no longer served; callers learn it on their next request.
    for (const w of this.waiting.values()) w.reject(new DnsServiceClosedError(err.message));
    this.waiting.clear();
  }

  private request(slot: WorkerSlot, req: WorkerRequest & { reqId: number }): Promise<void> {
    if (slot.failed) return Promise.reject(new DnsServiceClosedError(slot.failed.message));
    return new Promise((resolve, reject) => {
      this.waiting.set(req.reqId, { resolve, reject });
      slot.worker.postMessage(req);
    });
  }

  /** Starts answering on 127.0.0.11:53 inside the namespace at `netnsPath` with the names of `view`. */
  async attach(netnsPath: string, view: NameView): Promise<void> {
    if (this.closed) throw new DnsServiceClosedError('closed');
    const valid = validateNameView(view);
    if (this.owner.has(netnsPath)) throw new DnsNamespaceStateError(netnsPath, 'attached');
    // Registered before the first await, so update() and detach() right after attach() work.
    const entry: Served = { slot: null, latest: valid, detached: false };
    this.owner.set(netnsPath, entry);
    let slot: WorkerSlot | undefined;
    try {
      const slots = await this.start();
      slot = slots.filter((s) => !s.failed).sort((a, b) => a.namespaces - b.namespaces)[0];
      if (!slot) throw new DnsServiceClosedError('every worker has stopped');
      if (entry.detached) return;
      entry.slot = slot;
      slot.namespaces++;
      await this.request(slot, { op: 'attach', reqId: this.nextReq++, path: netnsPath, view: entry.latest });
    } catch (err) {
      if (this.owner.get(netnsPath) === entry) this.owner.delete(netnsPath);
      if (entry.slot) entry.slot.namespaces--;
      if (err instanceof DnsServiceClosedError) throw err;
      throw new DnsAttachError(netnsPath, (err as Error).message);
    }
  }

  /** Replaces the names a served namespace sees; answers follow at once (clients within the TTL). */
  update(netnsPath: string, view: NameView): void {
    const valid = validateNameView(view);
    const entry = this.owner.get(netnsPath);
    if (!entry) throw new DnsNamespaceStateError(netnsPath, 'not attached');
    entry.latest = valid;
    // Not yet sent to a worker: the attach request will carry this view.
    if (!entry.slot) return;
    if (entry.slot.failed) throw new DnsServiceClosedError(entry.slot.failed.message);
    entry.slot.worker.postMessage({ op: 'update', path: netnsPath, view: valid } satisfies WorkerRequest);
  }

  /** Stops answering inside the namespace (closes its sockets); unknown paths are fine. */
  async detach(netnsPath: string): Promise<void> {
    const entry = this.owner.get(netnsPath);
    if (!entry) return;
    this.owner.delete(netnsPath);
    entry.detached = true;
    const slot = entry.slot;
    if (!slot) return;
    slot.namespaces--;
    if (slot.failed) return;
    // The worker finishes a pending attach of this path before it handles the detach.
    await this.request(slot, { op: 'detach', reqId: this.nextReq++, path: netnsPath });
  }

  /** Namespaces currently served. */
  attached(): string[] {
    return [...this.owner.keys()];
  }

  /** Closes every socket and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    const slots = this.slots ?? (this.starting ? await this.starting : []);
    await Promise.all(
      slots.filter((s) => !s.failed).map((s) => this.request(s, { op: 'close', reqId: this.nextReq++ }).catch(() => undefined)),
    );
    this.closed = true;
    this.owner.clear();
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
