import type { TaskRecord } from '../model/records.js';
import { ApiClient } from './api-client.js';
import type { ApiTlsSource } from './api-tls.js';
import { LineSplitter, taskLabel } from './log-lines.js';

/** One task whose log is fetched, and the API endpoint of its node (undefined: the node advertises none). */
export interface LogTarget {
  label: string;
  taskId: string;
  service: string;
  slot: number;
  node: string;
  endpoint: string | undefined;
}

/** The tasks' log targets, slot order, each with its node's advertised endpoint; attached tasks have no log here. Pure. */
export function logTargets(tasks: readonly TaskRecord[], endpoints: ReadonlyMap<string, string | undefined>): LogTarget[] {
  return tasks
    .filter((t) => !t.external)
    .sort((a, b) => a.service.localeCompare(b.service) || a.slot - b.slot)
    .map((t) => ({ label: taskLabel(t.service, t.slot, t.node), taskId: t.id, service: t.service, slot: t.slot, node: t.node, endpoint: endpoints.get(t.node) }));
}

/** How fetched lines are printed. */
export interface LogPrintOptions {
  tail?: number | undefined;
  follow: boolean;
  tls?: ApiTlsSource | undefined;
  /** Ends every fetch (Ctrl-C): what was printed stays, nothing counts as failed. */
  signal: AbortSignal;
  /** prefixed: `web.1@host-a | line`; raw: the line alone; json: one {task, node, line} object a line. */
  format: 'prefixed' | 'raw' | 'json';
  write: (text: string) => void;
}

/** A target whose log could not be fetched, and why. */
export interface LogFailure {
  label: string;
  error: string;
}

/**
 * Fetches the targets' logs from their nodes' agents and prints them line by line: one after the
 * other, or all at once while following (each until its task ends). Returns what failed.
 */
export async function printTaskLogs(targets: readonly LogTarget[], o: LogPrintOptions): Promise<LogFailure[]> {
  const failures: LogFailure[] = [];
  const one = async (t: LogTarget) => {
    try {
      await printOne(t, o);
    } catch (err) {
      if (!o.signal.aborted) failures.push({ label: t.label, error: (err as Error).message });
    }
  };
  if (o.follow) await Promise.all(targets.map(one));
  else for (const t of targets) await one(t);
  return failures;
}

async function printOne(t: LogTarget, o: LogPrintOptions): Promise<void> {
  if (t.endpoint === undefined) throw new Error(`node ${t.node} advertises no agent API: its agent is not running, or is older than this meshnet (see meshnet node ls)`);
  const client = new ApiClient(t.endpoint, { tls: o.tls });
  const query = new URLSearchParams();
  if (o.tail !== undefined) query.set('tail', String(o.tail));
  if (o.follow) query.set('follow', '1');
  const qs = query.size > 0 ? `?${query}` : '';
  const res = await client.request('GET', `/v1/tasks/${encodeURIComponent(t.taskId)}/logs${qs}`, { signal: o.signal });
  const lines = new LineSplitter();
  const print = (ls: string[]) => {
    if (ls.length === 0) return;
    if (o.format === 'json') o.write(ls.map((line) => `${JSON.stringify({ task: `${t.service}.${t.slot}`, node: t.node, line })}\n`).join(''));
    else if (o.format === 'raw') o.write(ls.map((l) => `${l}\n`).join(''));
    else o.write(ls.map((l) => `${t.label} | ${l}\n`).join(''));
  };
  try {
    for await (const chunk of res) print(lines.push(chunk as Buffer));
  } catch (err) {
    print(lines.flush());
    if (o.signal.aborted) return;
    throw new Error(`the connection to node ${t.node}'s agent ended early (${(err as Error).message}): the agent may have restarted; run the command again`);
  }
  print(lines.flush());
}
