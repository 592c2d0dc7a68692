/**
 * The kernel settings an IPVS namespace needs besides services, as plain data: the sysctls
 * Docker Swarm learned it needs, and explicit connection timeouts.
 */
import type { IpvsTimeouts } from './codec.js';

/**
 * Sysctls (key as under /proc/sys, dotted) for a namespace running IPVS:
 * - conn_reuse_mode=0: do not reschedule a new connection that reuses a port of one in
 *   TIME_WAIT; with 1, bursts of short connections stall for a second each (moby#35082).
 * - expire_nodest_conn=1: drop connections to a destination that was deleted at once
 *   instead of black-holing them until they time out.
 * - expire_quiescent_template=1: persistence templates of a weight-0 destination expire,
 *   so sticky clients move off a draining task.
 * - conntrack=1: keep netfilter conntrack entries for IPVS connections, which the SNAT rules
 *   of ingress (snat-rules.ts) need.
 */
export function ipvsSysctls(): Record<string, string> {
  return {
    'net.ipv4.vs.conn_reuse_mode': '0',
    'net.ipv4.vs.expire_nodest_conn': '1',
    'net.ipv4.vs.expire_quiescent_template': '1',
    'net.ipv4.vs.conntrack': '1',
  };
}

/**
 * The sysctls of ipvsSysctls() for each namespace whose table IPVS holds (tasks and the ingress sandbox), as the
 * node plan's sysctl targets: the reconciler applies them like any other, before the tables.
 */
export function ipvsSysctlTargets(namespaces: readonly string[]): { netns: string; key: string; value: string }[] {
  const settings = Object.entries(ipvsSysctls());
  return namespaces.flatMap((netns) => settings.map(([key, value]) => ({ netns, key, value })));
}

/** The kernel defaults, made explicit: idle established TCP 900 s, FIN_WAIT 120 s, UDP 300 s. */
export const DEFAULT_IPVS_TIMEOUTS: IpvsTimeouts = { tcp: 900, tcpFin: 120, udp: 300 };

/** Thrown for timeouts the kernel cannot hold. */
export class IpvsTimeoutError extends Error {
  readonly code = 'IPVS_INVALID_TIMEOUT';
  constructor(message: string) {
    super(message);
    this.name = 'IpvsTimeoutError';
  }
}

/** Timeouts to SET_CONFIG: defaults overridden by `overrides`, each 1 s to 31 days. */
export function ipvsTimeouts(overrides: Partial<IpvsTimeouts> = {}): IpvsTimeouts {
  const t = { ...DEFAULT_IPVS_TIMEOUTS, ...overrides };
  for (const [k, v] of Object.entries(t)) {
    // The kernel stores timeouts in jiffies in an int: 31 days is well inside it at HZ=1000.
    if (!Number.isInteger(v) || v < 1 || v > 31 * 86400) throw new IpvsTimeoutError(`IPVS ${k} timeout ${v} s must be a whole number of seconds from 1 to 2678400`);
  }
  return t;
}

/** One structured log line announcing the timeouts, so nobody meets the idle-TCP cliff unknowingly. */
export function timeoutsLogEvent(t: IpvsTimeouts): Record<string, unknown> {
  return {
    event: 'ipvs_timeouts',
    tcpIdleSeconds: t.tcp,
    tcpFinSeconds: t.tcpFin,
    udpSeconds: t.udp,
    note: `established TCP connections through an IPVS service that stay idle for ${t.tcp} s are dropped; use TCP keepalives shorter than that or raise the timeout`,
  };
}
