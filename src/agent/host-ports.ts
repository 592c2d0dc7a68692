import { readFileSync } from 'node:fs';
import { withNetns } from '../sandbox/netns-switch.js';
import { boundPorts } from './task-readiness.js';

/** A port some socket already holds on the host, which publishing must not shadow. */
export interface BoundHostPort {
  protocol: 'tcp' | 'udp';
  port: number;
  owner: string;
}

/**
 * Ports bound in the host namespace (TCP listeners, bound UDP sockets), except `ours` ("tcp/8101"):
 * publishing one of them would DNAT its traffic away from the program that holds it, so the mesh
 * refuses it on this host.
 */
export function hostBoundPorts(hostNetns: string | null, ours: ReadonlySet<string>): BoundHostPort[] {
  const tables = withNetns(hostNetns, () => ({
    tcp: readFileSync('/proc/thread-self/net/tcp', 'utf8'),
    udp: readFileSync('/proc/thread-self/net/udp', 'utf8'),
  }));
  const out: BoundHostPort[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    for (const port of [...boundPorts(tables[protocol], protocol)].sort((a, b) => a - b)) {
      if (!ours.has(`${protocol}/${port}`)) out.push({ protocol, port, owner: 'a program already listening on this host' });
    }
  }
  return out;
}
