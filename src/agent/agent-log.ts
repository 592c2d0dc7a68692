/** One JSON line per event on stderr: what the agent did and why, for operators and log shippers. */
export function logEvent(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
  const line: Record<string, unknown> = { time: new Date().toISOString(), level, event, ...fields };
  for (const [k, v] of Object.entries(line)) if (v instanceof Error) line[k] = v.message;
  process.stderr.write(`${JSON.stringify(line)}\n`);
}
