import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

/**
 * meshnet's one logger. Every line carries time, level, component and event, so log shippers
 * and `jq` see one schema whatever part of meshnet wrote it:
 *   {"level":"info","time":"2026-12-01T16:00:00.000Z","component":"agent","event":"task.claimed",...}
 * Call sites write `log.info({ event: 'task.claimed', task: id })`; a component gets its child with
 * `log.child({ component: 'vip' })`.
 */
export type Logger = PinoLogger;

import type { LogLevel } from './log-levels.js';
export { LOG_LEVELS, type LogLevel } from './log-levels.js';

/** The root logger, writing JSON lines to stderr (or `destination`), tagged with `component`. */
export function createLogger(opts: { level?: LogLevel; component?: string; destination?: DestinationStream } = {}): Logger {
  const logger = pino(
    {
      level: opts.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { error: pino.stdSerializers.err, err: pino.stdSerializers.err },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
  return opts.component ? logger.child({ component: opts.component }) : logger;
}

/** A logger that writes nothing (unit tests, library callers that pass none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
