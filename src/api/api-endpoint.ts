import { isIPv4 } from 'node:net';
import { ApiSettingsError } from './api-errors.js';

/** Docker's metrics port is 9323; the agent API sits next to it. */
export const DEFAULT_API_PORT = 9324;

/** Where an agent's API is: a unix socket on its host, or HTTPS with client certificates. */
export type ApiEndpoint = { kind: 'unix'; path: string } | { kind: 'https'; host: string; port: number };

/** `unix:/run/meshnet/api.sock` or `https://10.1.0.11:9324`, as advertised in a node's status. */
export function formatEndpoint(e: ApiEndpoint): string {
  return e.kind === 'unix' ? `unix:${e.path}` : `https://${e.host}:${e.port}`;
}

/** Parses what formatEndpoint writes; throws ApiSettingsError naming the accepted forms. */
export function parseEndpoint(text: string): ApiEndpoint {
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length);
    if (!path.startsWith('/')) throw new ApiSettingsError(`agent API endpoint ${JSON.stringify(text)}: the socket path must be absolute`);
    return { kind: 'unix', path };
  }
  const m = /^https:\/\/([0-9.]+):(\d{1,5})$/.exec(text);
  if (m && isIPv4(m[1]!) && Number(m[2]) >= 1 && Number(m[2]) <= 65535) return { kind: 'https', host: m[1]!, port: Number(m[2]) };
  throw new ApiSettingsError(`agent API endpoint ${JSON.stringify(text)} is neither unix:/PATH nor https://IPV4:PORT`);
}

/** Parses --api-addr: `IP:PORT` or `IP` (port 9324); throws ApiSettingsError. */
export function parseApiAddr(text: string): { host: string; port: number } {
  const m = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(text);
  const port = m?.[2] === undefined ? DEFAULT_API_PORT : Number(m[2]);
  if (!m || !isIPv4(m[1]!) || port < 1 || port > 65535) throw new ApiSettingsError(`invalid --api-addr ${JSON.stringify(text)}: use IPV4:PORT, e.g. 10.1.0.11:${DEFAULT_API_PORT}`);
  return { host: m[1]!, port };
}
