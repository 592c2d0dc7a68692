// Apart from logger.ts so the CLI can offer the levels without loading pino for every command.

/** Levels an operator can choose with --log-level. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];
