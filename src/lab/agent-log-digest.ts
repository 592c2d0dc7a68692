/** What an agent logged during a scenario, short enough for a test failure message. */
export interface AgentLogDigest {
  /** Lines per event name, most frequent first. */
  events: Record<string, number>;
  /** Distinct "event: error" texts of warn and error lines (at most `maxProblems`). */
  problems: string[];
}

/** Counts the JSON log lines of `text` by event and keeps the distinct warnings and errors. */
export function digestAgentLog(text: string, maxProblems = 5): AgentLogDigest {
  const counts = new Map<string, number>();
  const problems = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { event?: unknown; level?: unknown; error?: unknown; msg?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const event = typeof entry.event === 'string' ? entry.event : '(no event)';
    counts.set(event, (counts.get(event) ?? 0) + 1);
    const level = entry.level;
    const bad = level === 'warn' || level === 'error' || (typeof level === 'number' && level >= 40);
    if (bad && problems.size < maxProblems) {
      const why = typeof entry.error === 'string' ? entry.error : typeof entry.msg === 'string' ? entry.msg : JSON.stringify(entry.error ?? '');
      problems.add(`${event}: ${why.slice(0, 160)}`);
    }
  }
  const events = Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return { events, problems: [...problems] };
}

/** One line: "task.removed x3, reconcile.pass x2 | problems: ...". */
export function formatDigest(d: AgentLogDigest): string {
  const events = Object.entries(d.events).map(([e, n]) => `${e} x${n}`).join(', ') || 'nothing logged';
  return d.problems.length > 0 ? `${events} | ${d.problems.join(' | ')}` : events;
}
