import { stableHash32 } from '../model/stable-hash.js';

/** The range the kernel draws ephemeral ports from by default (net.ipv4.ip_local_port_range). */
const FIRST = 32768;
const LAST = 60999;

/**
 * The port the resolver asks for first in a namespace when it may take any: a number derived from the
 * namespace's path, so a restarted agent (or a restarted resolver worker) binds where the last one did.
 * The task's NAT rule that maps 127.0.0.11:53 there is then already right: a restart rewrites no rule
 * per task, and a query in flight across the restart finds the new resolver on the same port. Taken
 * (the task listens there itself): any free port, as before. In the ephemeral range, as the kernel's
 * own pick would be, away from the ports services usually listen on.
 */
export function stableResolverPort(netnsPath: string): number {
  return FIRST + (stableHash32(netnsPath) % (LAST - FIRST + 1));
}
