import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { ApiError } from './api-errors.js';
import { RouteTable, type ApiMethod } from './api-router.js';
import { loadTls } from './api-tls.js';
import type { ApiListenPlan } from './api-listen.js';

/** A request as a handler sees it. */
export interface ApiRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  /** Aborts when the client goes away or the server closes: long answers (a log follow) stop on it. */
  signal: AbortSignal;
  /** Who asked: the client certificate's subject CN, or `unix` for the root-only socket. */
  peer: string;
  raw: IncomingMessage;
}

/** Answers one request; a thrown ApiError becomes its status and a JSON error body. */
export type ApiHandler = (req: ApiRequest, res: ServerResponse) => Promise<void> | void;

/** Writes a JSON answer. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The agent API: HTTPS with client certificates signed by the cluster CA, or a unix socket that
 * only root may open. Other modules add their routes with `route()`.
 */
export class ApiServer {
  private readonly routes = new RouteTable<ApiHandler>();
  private readonly inflight = new Set<AbortController>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    private plan: ApiListenPlan,
    private readonly log: Logger,
  ) {}

  /** Starts listening as the plan says; throws ApiSettingsError for unreadable TLS files, the listen error otherwise. */
  static async listen(plan: ApiListenPlan, log: Logger): Promise<ApiServer> {
    const apiLog = log.child({ component: 'api' });
    let server: Server;
    if (plan.kind === 'https') {
      const tls = loadTls(plan.tls);
      // rejectUnauthorized: a client without a certificate signed by the cluster CA never gets past the handshake.
      server = createHttpsServer({ ...tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' });
      server.on('tlsClientError', (err: Error, socket: TLSSocket) => apiLog.warn({ event: 'api.client_rejected', remote: socket.remoteAddress, error: err.message }));
    } else {
      server = createHttpServer();
      removeStaleSocket(plan.path);
    }
    const api = new ApiServer(server, plan, apiLog);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void api.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (plan.kind === 'https') server.listen(plan.port, plan.host, resolve);
      else server.listen(plan.path, resolve);
    });
    if (plan.kind === 'https' && plan.port === 0) {
      // Port 0 (tests): advertise the port the kernel chose.
      const port = (server.address() as { port: number }).port;
      api.plan = { ...plan, port, advertise: plan.advertise.replace(/:0$/, `:${port}`) };
    }
    // Connecting to a unix socket needs write permission on it: 0600 leaves it to root.
    if (plan.kind === 'unix') chmodSync(plan.path, 0o600);
    server.on('error', (err) => apiLog.error({ event: 'api.server_error', error: err.message }));
    apiLog.info({ event: 'api.listening', endpoint: api.endpoint });
    return api;
  }

  /** The endpoint this node advertises: `unix:/path` or `https://ip:port`. */
  get endpoint(): string {
    return this.plan.advertise;
  }

  /** Adds a route, e.g. `api.route('GET', '/v1/kernel-view', handler)`; `:name` segments arrive in req.params. */
  route(method: ApiMethod, pattern: string, handler: ApiHandler): void {
    this.routes.add(method, pattern, handler);
  }

  private async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(raw.url ?? '/', 'http://agent');
    const ac = new AbortController();
    this.inflight.add(ac);
    // 'close' on the response fires when it ends or when the client drops the connection.
    res.once('close', () => {
      ac.abort();
      this.inflight.delete(ac);
    });
    const peer = this.plan.kind === 'unix' ? 'unix' : peerName(raw.socket as TLSSocket);
    try {
      const found = this.routes.match(raw.method ?? 'GET', url.pathname);
      if (found === undefined) throw new ApiError('API_NO_ROUTE', `no route ${raw.method} ${url.pathname} on this agent (an older meshnet?)`, 404);
      if (found === 'methodNotAllowed') throw new ApiError('API_METHOD', `${raw.method} is not allowed on ${url.pathname}`, 405);
      await found.value({ params: found.params, query: url.searchParams, signal: ac.signal, peer, raw }, res);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('API_INTERNAL', `the agent failed: ${(err as Error).message}`, 500);
      if (e.status >= 500) this.log.error({ event: 'api.request_failed', method: raw.method, path: url.pathname, peer, error: (err as Error).message });
      if (!res.headersSent) sendJson(res, e.status, { error: { code: e.code, message: e.message } });
      else res.destroy();
    }
  }

  /** Stops listening, ends every open answer (follows end on their signal), removes the socket file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ac of this.inflight) ac.abort();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await done;
    if (this.plan.kind === 'unix') rmSync(this.plan.path, { force: true });
  }
}

function peerName(socket: TLSSocket): string {
  const cn = socket.getPeerCertificate?.()?.subject?.CN;
  return typeof cn === 'string' ? `cn=${cn}` : 'cn=?';
}

/** A socket file left by a killed agent (the state-dir lock says no agent runs here now) is removed; anything else is refused. */
function removeStaleSocket(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new ApiError('API_SOCKET_PATH', `${path} exists and is not a socket: move it away so the agent API can listen there`);
  rmSync(path);
}
