/**
 * Worker thread that serves the resolver in many task namespaces. setns(2) switches only the
 * calling thread, so this thread steps into a namespace, binds its sockets there, waits until
 * they are bound and steps back home; the sockets stay in the namespace they were made in.
 * Every namespace switch goes through one queue, so no socket is ever created while the
 * thread stands in the wrong namespace. Nothing here may use dns.lookup or async fs (the
 * libuv threadpool is shared with the main thread and must never start inside a task).
 */
import { connect, type Socket as TcpSocket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { inNetnsAsync } from '../sandbox/netns-switch.js';
import { compileAnswerTable } from './answer-table.js';
import { emptyDnsCounters } from './dns-counters.js';
import type { Upstream } from './forwarder.js';
import type { NameView } from './name-view.js';
import { NamespaceServer } from './namespace-server.js';
import { closePair, dupPair, queryUdpSocket } from './sockets.js';
import type { SocketFds, WorkerLog, WorkerMessage, WorkerRequest, WorkerSettings } from './worker-protocol.js';

const settings = workerData as WorkerSettings;
const port = parentPort!;
const servers = new Map<string, NamespaceServer>();
/** One set of counters for every namespace this worker serves: they outlive a detached namespace. */
const counters = emptyDnsCounters();
// Requests arrive in order, but an attach finishes asynchronously: an update that arrives
// meanwhile is kept here and applied when the sockets are up, and a detach waits for it.
const attaching = new Map<string, { done: Promise<void>; latest: NameView | null }>();

/** Sends a log line to the service, which owns the logger (a pino logger cannot cross threads). */
function log(fields: WorkerLog['fields'], level: WorkerLog['level'] = 'warn'): void {
  port.postMessage({ kind: 'log', level, fields } satisfies WorkerMessage);
}

function udpOpener(path: string) {
  return () => inNetnsAsync(path, queryUdpSocket);
}

function tcpOpener(path: string) {
  return (upstream: Upstream): Promise<TcpSocket> =>
    inNetnsAsync(path, async () => {
      // An IP literal host skips the lookup step of net.connect entirely (no dns.lookup here).
      const sock = connect({ host: upstream.host, port: upstream.port });
      // net.connect creates the socket on the next tick for an IP literal: wait until it exists.
      for (let i = 0; i < 10 && !(((sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1) > 0); i++) {
        await new Promise((r) => setImmediate(r));
      }
      return sock;
    });
}

function compile(view: NameView) {
  return compileAnswerTable(view, { ttlSeconds: settings.ttlSeconds, forwarding: settings.upstreams.length > 0 });
}

function attach(path: string, view: NameView, listenPort: number, prefer: number, fds: SocketFds | undefined): Promise<{ port: number; fds: SocketFds }> {
  if (servers.has(path) || attaching.has(path)) {
    if (fds) closePair(fds);
    return Promise.reject(new Error('already attached'));
  }
  const entry = { done: Promise.resolve(), latest: null as NameView | null };
  const opened = openServer(path, view, listenPort, prefer, fds, entry).finally(() => attaching.delete(path));
  entry.done = opened.then(() => undefined);
  attaching.set(path, entry);
  return opened;
}

async function openServer(path: string, view: NameView, listenPort: number, prefer: number, fds: SocketFds | undefined, entry: { latest: NameView | null }): Promise<{ port: number; fds: SocketFds }> {
  const table = compile(view);
  const server = await inNetnsAsync(path, () =>
    NamespaceServer.open({
      table,
      address: settings.address,
      port: listenPort,
      preferPort: prefer,
      ...(fds ? { fds } : {}),
      tcp: settings.tcp,
      forward: {
        upstreams: settings.upstreams,
        timeoutMs: settings.forwardTimeoutMs,
        maxConcurrent: settings.maxConcurrentForwards,
        openUdp: udpOpener(path),
        openTcp: tcpOpener(path),
      },
      log: (e) => log({ event: 'dns.socket_error', ...e, netns: path }),
      counters,
    }),
  );
  if (entry.latest) server.setTable(compile(entry.latest));
  servers.set(path, server);
  // Duplicated here, on this thread, before the reply: the service's copies must not depend on this
  // worker living on (node closes its own descriptors when the worker ends).
  return { port: server.port, fds: dupPair(server.fds) };
}

/** Handles one request; an attach resolves to the port it bound and copies of its sockets. */
async function handle(req: Exclude<WorkerRequest, { op: 'stats' }>): Promise<{ port: number; fds: SocketFds } | void> {
  switch (req.op) {
    case 'attach':
      return attach(req.path, req.view, req.port, req.prefer ?? 0, req.fds);
    case 'update': {
      const pending = attaching.get(req.path);
      if (pending) {
        pending.latest = req.view;
        return;
      }
      const server = servers.get(req.path);
      if (!server) {
        log({ event: 'dns.update_unknown_netns', netns: req.path });
        return;
      }
      server.setTable(compile(req.view));
      return;
    }
    case 'detach': {
      await attaching.get(req.path)?.done.catch(() => undefined);
      const server = servers.get(req.path);
      servers.delete(req.path);
      await server?.close();
      return;
    }
    case 'close': {
      await Promise.all([...attaching.values()].map((a) => a.done.catch(() => undefined)));
      const all = [...servers.values()];
      servers.clear();
      await Promise.all(all.map((s) => s.close()));
      return;
    }
  }
}

port.on('message', (req: WorkerRequest) => {
  if (req.op === 'stats') {
    port.postMessage({ kind: 'reply', reqId: req.reqId, ok: true, counters } satisfies WorkerMessage);
    return;
  }
  handle(req).then(
    (bound) => {
      if ('reqId' in req) port.postMessage({ kind: 'reply', reqId: req.reqId, ok: true, ...(bound ? { port: bound.port, fds: bound.fds } : {}) } satisfies WorkerMessage);
    },
    (err: Error) => {
      if ('reqId' in req) port.postMessage({ kind: 'reply', reqId: req.reqId, ok: false, error: err.message } satisfies WorkerMessage);
      else log({ event: 'dns.request_failed', op: req.op, error: err.message }, 'error');
    },
  );
});
