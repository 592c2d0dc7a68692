/**
 * True for SQLite's busy and locked errors, every extended code included (SQLITE_BUSY_RECOVERY while
 * another process recovers the WAL, SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_TIMEOUT, SQLITE_LOCKED_*): a later
 * try may succeed. Its own module so the agent can ask without loading the SQLite binding.
 */
export function isSqliteBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}
