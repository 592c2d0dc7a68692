import { CliError, EXIT } from './cli-context.js';

// Hand-written rather than a library: Docker reads durations with Go's time.ParseDuration, and the
// npm parsers that cover the compound form (`1m30s`) also accept English (`1 hour`) and bare numbers,
// which Docker refuses. Matching Docker exactly is what lets an operator paste the same flags.
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const WHOLE = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** The forms Docker accepts, for messages. */
export const DURATION_RULE = 'a number with a unit, as Docker takes it: 500ms, 5s, 1m30s, 2h (units ns, us, ms, s, m, h)';

/**
 * Reads a Docker duration (`500ms`, `5s`, `1m30s`, `0`) given to `flag`, in milliseconds (a
 * remainder below 1 ms is rounded up, so `1us` is not taken for zero). Throws the CLI's usage
 * error (exit 2) naming the flag and the accepted forms.
 */
export function parseDuration(flag: string, text: string): number {
  const t = text.trim();
  if (t === '0') return 0;
  if (!WHOLE.test(t)) {
    const hint = /^\d+(\.\d+)?$/.test(t) ? ` (a unit is required: ${t}s?)` : '';
    throw new CliError(`invalid ${flag} ${JSON.stringify(text)}${hint}: use ${DURATION_RULE}`, EXIT.usage);
  }
  let ms = 0;
  for (const m of t.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) throw new CliError(`invalid ${flag} ${JSON.stringify(text)}: too long`, EXIT.usage);
  return Math.ceil(ms - 1e-9);
}
