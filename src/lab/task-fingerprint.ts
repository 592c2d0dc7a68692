/** What identifies one running replica: a stopped or restarted task changes at least one of these. */
export interface TaskFingerprint {
  service: string;
  slot: number;
  id: string;
  node: string;
  /** The task's process id from the agent's state folder; null when it has none. */
  pid: number | null;
  restarts: number;
  state: string;
}

const name = (t: TaskFingerprint): string => `${t.service}.${t.slot} (${t.id} on ${t.node})`;

/** Every way `after` differs from `before` that means a task was stopped, replaced or restarted. */
export function taskChanges(before: readonly TaskFingerprint[], after: readonly TaskFingerprint[]): string[] {
  const now = new Map(after.map((t) => [t.id, t]));
  const out: string[] = [];
  for (const b of before) {
    const a = now.get(b.id);
    if (!a) {
      out.push(`${name(b)} is gone`);
      continue;
    }
    if (a.pid !== b.pid) out.push(`${name(b)} changed process ${b.pid ?? 'none'} -> ${a.pid ?? 'none'}`);
    if (a.restarts !== b.restarts) out.push(`${name(b)} restarted (${b.restarts} -> ${a.restarts} restarts)`);
    if (a.state !== b.state) out.push(`${name(b)} went ${b.state} -> ${a.state}`);
  }
  const known = new Set(before.map((t) => t.id));
  for (const a of after) if (!known.has(a.id)) out.push(`${name(a)} is new`);
  return out;
}
