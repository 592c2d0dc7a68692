import { PROBE_OUTCOMES, type ProbeOutcome, type ProbeReport } from './probe-outcome.js';

/** The figures of one probe run around one fault; times are ms relative to the fault. */
export interface ProbeSummary {
  attempts: number;
  ok: number;
  failed: number;
  byOutcome: Record<ProbeOutcome, number>;
  /** Start of the first failed attempt, relative to the fault (negative: before it). */
  firstFailureMs: number | null;
  /** Start of the last failed attempt, relative to the fault. */
  lastFailureMs: number | null;
  /** From the first failure's start to the last's. */
  failureSpanMs: number | null;
  /** How long the probe ran before and after the fault. */
  probedBeforeMs: number;
  probedAfterMs: number;
  /** Answers per "task@node". */
  answeredBy: Record<string, number>;
  /** A few distinct failure details ("ECONNREFUSED"), for the report. */
  failureDetails: string[];
  /** Runs of failures (starts less than BURST_GAP_MS apart), relative to the fault; the first MAX_BURSTS. */
  bursts: FailureBurst[];
  /** How many runs there were in all. */
  burstCount: number;
}

/** Failed attempts that came together. */
export interface FailureBurst {
  fromMs: number;
  toMs: number;
  count: number;
}

/** Failures further apart than this start a new burst: a few probe intervals. */
export const BURST_GAP_MS = 200;
const MAX_BURSTS = 8;

/** Summarizes `report` around a fault injected at `faultAt` (ms since the epoch). */
export function summarizeProbe(report: ProbeReport, faultAt: number): ProbeSummary {
  const byOutcome = Object.fromEntries(PROBE_OUTCOMES.map((o) => [o, 0])) as Record<ProbeOutcome, number>;
  const answeredBy: Record<string, number> = {};
  const details = new Set<string>();
  const bursts: FailureBurst[] = [];
  let first: number | null = null;
  let last: number | null = null;
  for (const a of report.attempts) {
    byOutcome[a.outcome]++;
    if (a.outcome === 'ok') {
      const who = `${a.task ?? '?'}@${a.node ?? '?'}`;
      answeredBy[who] = (answeredBy[who] ?? 0) + 1;
      continue;
    }
    first = first === null ? a.t : Math.min(first, a.t);
    last = last === null ? a.t : Math.max(last, a.t);
    if (details.size < 4) details.add(`${a.outcome}: ${a.detail ?? ''}`.trim());
    const at = a.t - faultAt;
    const open = bursts[bursts.length - 1];
    if (open && at - open.toMs < BURST_GAP_MS) {
      open.toMs = at;
      open.count++;
    } else bursts.push({ fromMs: at, toMs: at, count: 1 });
  }
  return {
    attempts: report.attempts.length,
    ok: byOutcome.ok,
    failed: report.attempts.length - byOutcome.ok,
    byOutcome,
    firstFailureMs: first === null ? null : first - faultAt,
    lastFailureMs: last === null ? null : last - faultAt,
    failureSpanMs: first === null || last === null ? null : last - first,
    probedBeforeMs: faultAt - report.startedAt,
    probedAfterMs: report.endedAt - faultAt,
    answeredBy: Object.fromEntries(Object.entries(answeredBy).sort(([a], [b]) => a.localeCompare(b))),
    failureDetails: [...details],
    bursts: bursts.slice(0, MAX_BURSTS),
    burstCount: bursts.length,
  };
}
