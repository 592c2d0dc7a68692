import { readFileSync } from 'node:fs';
import { withNetns } from '../sandbox/netns-switch.js';
import type { HealthState } from '../tasks/health-check.js';
import type { TaskInfo } from '../tasks/supervisor.js';
import { taskMessage, type TargetPort } from '../tasks/task-reason.js';
import type { TaskRecord } from '../model/records.js';

/** The embedded resolver's address: its sockets in a task namespace are the agent's, never the task's. */
const RESOLVER_V4 = '0B00007F';

/**
 * Local ports a task's own programs hold in one /proc/net/{tcp,udp,tcp6,udp6} table: TCP sockets in
 * LISTEN (state 0A) or any bound UDP socket. The resolver's sockets on 127.0.0.11 are left out, so a
 * task is never taken for ready because the agent serves DNS in its namespace. Pure: parses the text.
 */
export function boundPorts(procNetText: string, protocol: 'tcp' | 'udp'): Set<number> {
  const ports = new Set<number>();
  for (const line of procNetText.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const state = f[3];
    if (!local || !state) continue;
    if (protocol === 'tcp' && state !== '0A') continue;
    const [address, portHex] = local.split(':');
    if (address === RESOLVER_V4) continue;
    const port = parseInt(portHex ?? '', 16);
    if (Number.isFinite(port)) ports.add(port);
  }
  return ports;
}

function readTable(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // No IPv6 in this kernel (or namespace): no tcp6/udp6 file, no v6 listeners.
    return '';
  }
}

/**
 * True when the task's namespace holds a listener on every target port its service publishes,
 * counting IPv6 and dual-stack `::` sockets (Node's `listen(port)`, Go's `":80"`, iperf3's default
 * show only in tcp6). A task without ports is ready when running. Reads the namespace's own tables.
 */
export function taskReady(sandbox: string, ports: readonly { protocol: 'tcp' | 'udp'; target: number }[]): boolean {
  if (ports.length === 0) return true;
  return withNetns(sandbox, () => {
    const bound = { tcp: new Set<number>(), udp: new Set<number>() };
    for (const protocol of ['tcp', 'udp'] as const) {
      for (const table of [protocol, `${protocol}6`]) {
        for (const p of boundPorts(readTable(`/proc/thread-self/net/${table}`), protocol)) bound[protocol].add(p);
      }
    }
    return ports.every((p) => bound[p.protocol].has(p.target));
  });
}

/** What the store should say of a local task: its state (running only when ready), message and health. */
export interface TaskReport {
  state: TaskRecord['state'] | undefined;
  /** In every load-balancing table and DNS `tasks.` answer: running, listening and, with a health check, healthy. */
  ready: boolean;
  message: string | undefined;
  health: HealthState | undefined;
}

/** What taskReport says of a running, listening task without a health check. */
const READY_REPORT: TaskReport = Object.freeze({ state: 'running', ready: true, message: undefined, health: undefined });

/**
 * The one readiness predicate: a task is ready when its process runs, listens on every target port,
 * and is healthy when it has a health check. Everything that balances traffic reads it as the
 * record's `state === 'running'`. Pure.
 */
export function taskReport(info: TaskInfo, listening: boolean, ports: readonly TargetPort[], now: number, readyDeadlineMs?: number): TaskReport {
  // Nearly every task on every pass: running, listening, no health check. One shared answer instead of
  // a spread and a message built per task per pass (a share of a no-op pass's young-generation garbage).
  if (listening && info.state === 'running' && info.health === undefined) return READY_REPORT;
  const up = info.state === 'running';
  const ready = up && listening && (info.health === undefined || info.health.status === 'healthy');
  const state = ready
    ? 'running'
    : up || info.state === 'starting' || info.state === 'exited'
      ? 'starting'
      : info.state === 'failed' || info.state === 'shutdown'
        ? info.state
        : undefined;
  return { state, ready, message: taskMessage({ ...info, ready: up && listening, ports, now, ...(readyDeadlineMs !== undefined ? { readyDeadlineMs } : {}) }), health: info.health };
}
