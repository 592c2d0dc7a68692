import { isIP } from 'node:net';

/** Where an HTTP endpoint listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** A listen address that cannot be used, with the forms that can. */
export class ListenAddressError extends Error {
  readonly code = 'LISTEN_ADDRESS_INVALID';
  constructor(flag: string, value: string, why: string) {
    super(`invalid ${flag} "${value}": ${why}. Use IP:PORT (127.0.0.1:9323, [::1]:9323, 0.0.0.0:9323) or off`);
    this.name = 'ListenAddressError';
  }
}

/**
 * Parses `IP:PORT`, `[IPv6]:PORT` or `off` (null). Only IP literals: a name would need a lookup,
 * and the agent may run in a namespace whose resolver is not the host's.
 */
export function parseListenAddress(value: string, flag = '--metrics-addr'): ListenAddress | null {
  if (value === 'off') return null;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:]+):(\d+)$/.exec(value);
  if (!m) throw new ListenAddressError(flag, value, 'not IP:PORT');
  const host = m[1]!;
  if (isIP(host) === 0) throw new ListenAddressError(flag, value, `${host} is not an IP address`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ListenAddressError(flag, value, `port ${m[2]} is not 0-65535`);
  return { host, port };
}
