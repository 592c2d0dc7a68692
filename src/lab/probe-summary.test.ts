import { describe, expect, it } from 'vitest';
import { summarizeProbe } from './probe-summary.js';
import type { ProbeAttempt, ProbeReport } from './probe-outcome.js';

const FAULT = 10_000;

function report(attempts: ProbeAttempt[]): ProbeReport {
  return { target: '192.0.2.1:8000', intervalMs: 20, timeoutMs: 1000, startedAt: 9_000, endedAt: 14_000, attempts };
}

const ok = (t: number, task = 'web.1', node = 'host-a'): ProbeAttempt => ({ t, ms: 2, outcome: 'ok', task, node });

describe('summarizeProbe', () => {
  it('counts outcomes and places the failures relative to the fault', () => {
    const s = summarizeProbe(
      report([
        ok(9_500),
        { t: 10_100, ms: 1, outcome: 'refused', detail: 'ECONNREFUSED' },
        ok(10_200, 'web.2', 'host-b'),
        { t: 10_400, ms: 1000, outcome: 'timeout', detail: 'no answer within the timeout' },
        ok(11_000),
      ]),
      FAULT,
    );
    expect(s).toMatchObject({ attempts: 5, ok: 3, failed: 2, firstFailureMs: 100, lastFailureMs: 400, failureSpanMs: 300, probedBeforeMs: 1000, probedAfterMs: 4000 });
    expect(s.byOutcome).toEqual({ ok: 3, refused: 1, timeout: 1, reset: 0, wrong: 0, error: 0 });
    expect(s.answeredBy).toEqual({ 'web.1@host-a': 2, 'web.2@host-b': 1 });
    expect(s.failureDetails).toEqual(['refused: ECONNREFUSED', 'timeout: no answer within the timeout']);
    expect(s.bursts).toEqual([
      { fromMs: 100, toMs: 100, count: 1 },
      { fromMs: 400, toMs: 400, count: 1 },
    ]);
  });

  it('groups failures that come less than 200 ms apart into one burst', () => {
    const refused = (t: number): ProbeAttempt => ({ t, ms: 1, outcome: 'refused' });
    const s = summarizeProbe(report([refused(10_000), refused(10_020), refused(10_219), refused(10_419), ok(10_500), refused(12_000)]), FAULT);
    expect(s.bursts).toEqual([
      { fromMs: 0, toMs: 219, count: 3 },
      { fromMs: 419, toMs: 419, count: 1 },
      { fromMs: 2000, toMs: 2000, count: 1 },
    ]);
    expect(s.burstCount).toBe(3);
  });

  it('reports no failure span when nothing failed, and a zero span for a single failure', () => {
    expect(summarizeProbe(report([ok(9_900), ok(10_100)]), FAULT)).toMatchObject({ failed: 0, failureSpanMs: null, lastFailureMs: null });
    expect(summarizeProbe(report([{ t: 9_800, ms: 3, outcome: 'reset' }]), FAULT)).toMatchObject({ failed: 1, failureSpanMs: 0, lastFailureMs: -200 });
  });
});
