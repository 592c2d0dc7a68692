import { readFileSync } from 'node:fs';
import { withNetns } from '../sandbox/netns-switch.js';

/**
 * Local ports bound in a /proc/net/{tcp,udp} table: TCP sockets in LISTEN (state 0A), or any bound
 * UDP socket. Pure: parses the kernel's text.
 */
export function boundPorts(procNetText: string, protocol: 'tcp' | 'udp'): Set<number> {
  const ports = new Set<number>();
  for (const line of procNetText.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const state = f[3];
    if (!local || !state) continue;
    if (protocol === 'tcp' && state !== '0A') continue;
    const port = parseInt(local.split(':')[1] ?? '', 16);
    if (Number.isFinite(port)) ports.add(port);
  }
  return ports;
}

/**
 * True when a task listens on every target port its service publishes: the process is up *and*
 * ready, so the mesh sends it traffic only once it can answer (a process that was just restarted
 * is not). Reads the task namespace's socket tables; a task without ports is ready when running.
 */
export function taskReady(sandbox: string, ports: readonly { protocol: 'tcp' | 'udp'; target: number }[]): boolean {
  if (ports.length === 0) return true;
  return withNetns(sandbox, () => {
    const tables = { tcp: '', udp: '' };
    try {
      tables.tcp = readFileSync('/proc/thread-self/net/tcp', 'utf8');
      tables.udp = readFileSync('/proc/thread-self/net/udp', 'utf8');
    } catch {
      return false;
    }
    const bound = { tcp: boundPorts(tables.tcp, 'tcp'), udp: boundPorts(tables.udp, 'udp') };
    return ports.every((p) => bound[p.protocol].has(p.target));
  });
}
