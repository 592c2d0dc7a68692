import { describe, expect, it } from 'vitest';
import { boundViolations, describeBound } from './reliability-bounds.js';
import type { ProbeAttempt, ProbeReport } from './probe-outcome.js';

const FAULT = 100_000;
const ok = (t: number, node = 'host-a'): ProbeAttempt => ({ t, ms: 2, outcome: 'ok', task: 'web.1', node });
const refused = (t: number): ProbeAttempt => ({ t, ms: 1, outcome: 'refused', detail: 'ECONNREFUSED' });

function report(attempts: ProbeAttempt[], endedAt = FAULT + 20_000): ProbeReport {
  return { target: '192.0.2.1:8000', intervalMs: 20, timeoutMs: 1000, startedAt: FAULT - 1000, endedAt, attempts };
}

describe('boundViolations', () => {
  it('none: any failed request breaks it, wherever it falls', () => {
    expect(boundViolations(report([ok(FAULT - 500), ok(FAULT + 500)]), FAULT, { kind: 'none' })).toEqual([]);
    expect(boundViolations(report([refused(FAULT - 500), ok(FAULT + 500)]), FAULT, { kind: 'none' })).toEqual(['1 of 2 requests failed, 0 allowed']);
  });

  it('span: measures from the first failure to the last', () => {
    const bound = { kind: 'span', maxSpanMs: 500 } as const;
    expect(boundViolations(report([refused(FAULT + 100), ok(FAULT + 200), refused(FAULT + 600)]), FAULT, bound)).toEqual([]);
    expect(boundViolations(report([refused(FAULT + 100), refused(FAULT + 601)]), FAULT, bound)).toEqual(['requests failed for 501 ms (2 failed), at most 500 ms allowed']);
  });

  describe('until', () => {
    const bound = { kind: 'until', afterFaultMs: 11_000, deadNode: 'host-c', observeMs: 3000 } as const;

    it('allows failures up to the mark when traffic flows to the live hosts afterwards', () => {
      expect(boundViolations(report([refused(FAULT + 10_900), ok(FAULT + 12_000, 'host-b')]), FAULT, bound)).toEqual([]);
    });

    it('flags a failure after the mark, naming when the last one happened', () => {
      expect(boundViolations(report([refused(FAULT + 11_500), refused(FAULT + 16_000), ok(FAULT + 17_000)]), FAULT, bound)).toEqual([
        '2 requests failed later than fault + 11000 ms (the last at fault + 16000 ms)',
      ]);
    });

    it('flags silence after the mark, answers from the dead node, and a probe that stopped too early', () => {
      expect(boundViolations(report([refused(FAULT + 100)]), FAULT, bound)).toEqual(['no request succeeded after fault + 11000 ms: traffic did not move to the other hosts']);
      expect(boundViolations(report([ok(FAULT + 12_000, 'host-c')]), FAULT, bound)).toEqual(['1 answers came from host-c after it was killed: the node was not really gone']);
      expect(boundViolations(report([ok(FAULT + 12_000)], FAULT + 12_500), FAULT, bound)[0]).toMatch(/too early to judge/);
    });
  });

  it('describes each bound for the report', () => {
    expect(describeBound({ kind: 'none' })).toBe('0 failed');
    expect(describeBound({ kind: 'span', maxSpanMs: 500 })).toBe('failures within 500 ms');
    expect(describeBound({ kind: 'until', afterFaultMs: 11_000, deadNode: 'host-c', observeMs: 3000 })).toBe('no failure after fault + 11000 ms');
  });
});
