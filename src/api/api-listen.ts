import { join } from 'node:path';
import { ApiSettingsError } from './api-errors.js';
import { DEFAULT_API_PORT, formatEndpoint, parseApiAddr } from './api-endpoint.js';
import type { ApiTlsSource } from './api-tls.js';

/** The socket's name in the agent's state directory. */
export const API_SOCKET_NAME = 'api.sock';

/** How the agent API listens, and the endpoint the node advertises for it. */
export type ApiListenPlan =
  | { kind: 'unix'; path: string; advertise: string }
  | { kind: 'https'; host: string; port: number; tls: ApiTlsSource; advertise: string };

/** What the listen plan is decided from. */
export interface ApiListenInput {
  /** --api-addr as given (IP[:PORT]); default: the advertise address on port 9324. */
  apiAddr?: string | undefined;
  advertiseAddr: string;
  stateDir: string;
  /** resolveApiTls's answer. */
  tls: ApiTlsSource | undefined;
}

/**
 * HTTPS with client certificates on --api-addr when there is TLS material; otherwise a unix socket
 * `<state-dir>/api.sock` only: the API never listens on TCP in plaintext. Pure; throws
 * ApiSettingsError for an --api-addr that cannot be served safely.
 */
export function apiListenPlan(i: ApiListenInput): ApiListenPlan {
  if (!i.tls) {
    if (i.apiAddr !== undefined) {
      throw new ApiSettingsError(`--api-addr ${i.apiAddr} needs TLS material so that only the cluster's certificates get in: give --api-cert, --api-key and --api-ca (or the --etcd-* client certificate they default to), or drop --api-addr to serve on ${join(i.stateDir, API_SOCKET_NAME)} only`);
    }
    const path = join(i.stateDir, API_SOCKET_NAME);
    // sun_path holds 107 bytes and a NUL.
    if (Buffer.byteLength(path) > 107) throw new ApiSettingsError(`the agent API socket path ${path} is longer than 107 bytes: give a shorter --state-dir`);
    return { kind: 'unix', path, advertise: formatEndpoint({ kind: 'unix', path }) };
  }
  const { host, port } = i.apiAddr !== undefined ? parseApiAddr(i.apiAddr) : { host: i.advertiseAddr, port: DEFAULT_API_PORT };
  // Listening on every address still advertises the one other nodes reach.
  const advertised = host === '0.0.0.0' ? i.advertiseAddr : host;
  return { kind: 'https', host, port, tls: i.tls, advertise: formatEndpoint({ kind: 'https', host: advertised, port }) };
}
