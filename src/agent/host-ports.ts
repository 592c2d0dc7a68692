import { readFileSync } from 'node:fs';
import { withNetns } from '../sandbox/netns-switch.js';
import type { ClusterSnapshot } from '../model/cluster.js';
import { boundPorts } from './task-readiness.js';

/** A port some program on the host holds. */
export interface BoundHostPort {
  protocol: 'tcp' | 'udp';
  port: number;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Ports bound in the host namespace (TCP listeners, bound UDP sockets, IPv4 and IPv6), except `ours` ("tcp/8101"). */
export function hostBoundPorts(hostNetns: string | null, ours: ReadonlySet<string>): BoundHostPort[] {
  const tables = withNetns(hostNetns, () => ({
    tcp: read('/proc/thread-self/net/tcp') + read('/proc/thread-self/net/tcp6'),
    udp: read('/proc/thread-self/net/udp') + read('/proc/thread-self/net/udp6'),
  }));
  const out: BoundHostPort[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    // The two tables are concatenated: the second header line parses as no socket.
    for (const port of [...boundPorts(tables[protocol], protocol)].sort((a, b) => a - b)) {
      if (!ours.has(`${protocol}/${port}`)) out.push({ protocol, port });
    }
  }
  return out;
}

/**
 * Published ports that a program on this host also holds. Docker's rule stands: the DNAT of a
 * published port is there whoever listens, so a local user can never take a service's traffic by
 * binding its port first; the program is shadowed for outside clients, and the operator is told.
 */
export function shadowedPorts(snapshot: ClusterSnapshot, bound: readonly BoundHostPort[]): string[] {
  const held = new Set(bound.map((b) => `${b.port}/${b.protocol}`));
  const out: string[] = [];
  for (const s of snapshot.services) {
    for (const p of s.ports) {
      if (p.mode === 'ingress' && held.has(`${p.published}/${p.protocol}`)) {
        out.push(`published port ${p.published}/${p.protocol} of service ${s.name} shadows a program listening on it on this host: outside clients reach the service; move the program to another port`);
      }
    }
  }
  return out.sort();
}
