import { isIPv4, isIPv6 } from 'node:net';
import { ApiSettingsError } from './api-errors.js';

/** Docker's metrics port is 9323; the agent API sits next to it. */
export const DEFAULT_API_PORT = 9324;

/** Where an agent's API is: a unix socket on its host, or HTTPS with client certificates. */
export type ApiEndpoint = { kind: 'unix'; path: string } | { kind: 'https'; host: string; port: number };

/** `unix:/run/meshnet/api.sock`, `https://10.1.0.11:9324` or `https://[2001:db8::11]:9324`, as advertised in a node's status. */
export function formatEndpoint(e: ApiEndpoint): string {
  return e.kind === 'unix' ? `unix:${e.path}` : `https://${isIPv6(e.host) ? `[${e.host}]` : e.host}:${e.port}`;
}

/** Parses what formatEndpoint writes; throws ApiSettingsError naming the accepted forms. */
export function parseEndpoint(text: string): ApiEndpoint {
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length);
    if (!path.startsWith('/')) throw new ApiSettingsError(`agent API endpoint ${JSON.stringify(text)}: the socket path must be absolute`);
    return { kind: 'unix', path };
  }
  // A v6 host is bracketed, as in any URL (a node with a v6 underlay advertises one).
  const m = /^https:\/\/(?:([0-9.]+)|\[([0-9a-fA-F:.]+)\]):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  if (m && host && (m[1] ? isIPv4(host) : isIPv6(host)) && Number(m[3]) >= 1 && Number(m[3]) <= 65535) return { kind: 'https', host, port: Number(m[3]) };
  throw new ApiSettingsError(`agent API endpoint ${JSON.stringify(text)} is neither unix:/PATH nor https://IPV4:PORT or https://[IPV6]:PORT`);
}

/** Parses --api-addr: `IP:PORT` or `IP` (port 9324), a v6 one as `[IPV6]:PORT` or bare; throws ApiSettingsError. */
export function parseApiAddr(text: string): { host: string; port: number } {
  const m = /^(?:([0-9.]+)|\[([0-9a-fA-F:.]+)\])(?::(\d{1,5}))?$/.exec(text) ?? (isIPv6(text) ? [text, undefined, text, undefined] : null);
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? DEFAULT_API_PORT : Number(m[3]);
  if (!m || !host || !(m[1] ? isIPv4(host) : isIPv6(host)) || port < 1 || port > 65535) throw new ApiSettingsError(`invalid --api-addr ${JSON.stringify(text)}: use IPV4:PORT or [IPV6]:PORT, e.g. 10.1.0.11:${DEFAULT_API_PORT}`);
  return { host, port };
}
