import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { ApiError, ApiUnreachableError } from './api-errors.js';
import { parseEndpoint, type ApiEndpoint } from './api-endpoint.js';
import { caCertificates, loadTls, peerProblem, type ApiTls, type ApiTlsSource } from './api-tls.js';

/** Options of an ApiClient. */
export interface ApiClientOptions {
  /** The client certificate, key and cluster CA; needed for an https endpoint. */
  tls?: ApiTlsSource | undefined;
  /** Time allowed to connect and get the answer's head (default 10 s); a streamed body may take longer. */
  timeoutMs?: number;
}

/** One agent's API, reached at the endpoint its node advertises (a unix socket path works across network namespaces). */
export class ApiClient {
  private readonly endpoint: ApiEndpoint;
  private readonly tls: { material: ApiTls; cas: X509Certificate[] } | undefined;
  private readonly timeoutMs: number;

  /** Throws ApiSettingsError for a malformed endpoint, unreadable TLS files, or an https endpoint without TLS material. */
  constructor(
    readonly endpointText: string,
    opts: ApiClientOptions = {},
  ) {
    this.endpoint = parseEndpoint(endpointText);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (this.endpoint.kind === 'https') {
      if (!opts.tls) {
        throw new ApiUnreachableError(endpointText, 'it takes only clients with a certificate signed by the cluster CA: give --api-cert, --api-key and --api-ca (or --etcd-cert, --etcd-key and --etcd-cacert)');
      }
      const material = loadTls(opts.tls);
      this.tls = { material, cas: caCertificates(material.ca) };
    } else this.tls = undefined;
  }

  /** Sends a request; resolves with the answer once its status is 2xx (its body unread), rejects with the agent's ApiError otherwise. */
  async request(method: string, path: string, opts: { signal?: AbortSignal } = {}): Promise<IncomingMessage> {
    const socket = this.endpoint.kind === 'https' ? await this.connectVerified(this.endpoint, opts.signal) : undefined;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({
        method,
        path,
        headers: { accept: 'application/json, text/plain' },
        ...(this.endpoint.kind === 'unix' ? { socketPath: this.endpoint.path } : { createConnection: () => socket! }),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err.name === 'AbortError') reject(err);
        else reject(new ApiUnreachableError(this.endpointText, hintFor(err)));
      });
      req.once('response', (res) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(res);
        readBody(res).then(
          (body) => reject(errorFromBody(status, body)),
          (err: Error) => reject(new ApiUnreachableError(this.endpointText, err.message)),
        );
      });
      req.end();
    });
  }

  /** GETs a JSON answer. */
  async getJson<T>(path: string, opts: { signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.request('GET', path, opts);
    return JSON.parse(await readBody(res)) as T;
  }

  /** A TLS connection whose peer a cluster CA signed (see peerProblem for why not OpenSSL's own check). */
  private connectVerified(e: { host: string; port: number }, signal: AbortSignal | undefined): Promise<TLSSocket> {
    const { material, cas } = this.tls!;
    return new Promise<TLSSocket>((resolve, reject) => {
      const socket = tlsConnect({ host: e.host, port: e.port, cert: material.cert, key: material.key, rejectUnauthorized: false, minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] });
      const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake within ${this.timeoutMs} ms`)), this.timeoutMs);
      const onAbort = () => socket.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(err.name === 'AbortError' ? err : new ApiUnreachableError(this.endpointText, hintFor(err)));
      });
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const problem = peerProblem(socket.getPeerX509Certificate(), cas);
        if (problem) {
          socket.destroy();
          reject(new ApiUnreachableError(this.endpointText, `refused the agent: ${problem}`));
          return;
        }
        resolve(socket);
      });
    });
  }
}

function hintFor(err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return 'no socket there: is the node\'s agent running (meshnet node ls) and on this host?';
  if (err.code === 'ECONNREFUSED') return 'connection refused: is the node\'s agent running (meshnet node ls)?';
  if (err.code === 'EACCES') return 'permission denied: the agent\'s socket is root\'s; run as root';
  if (err.code === 'ECONNRESET' || /certificate|handshake|alert/i.test(err.message)) return `${err.message} (the agent takes only certificates signed by the cluster CA: check --api-cert/--api-key/--api-ca)`;
  return err.message;
}

async function readBody(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of res) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function errorFromBody(status: number, body: string): ApiError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.message === 'string') return new ApiError(String(parsed.error.code ?? 'API_ERROR'), parsed.error.message, status);
  } catch {
    // not ours: say what came back
  }
  return new ApiError('API_ERROR', `the agent answered ${status}: ${body.slice(0, 200)}`, status);
}
