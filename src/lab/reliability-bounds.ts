import type { ProbeReport } from './probe-outcome.js';

/** How many requests a scenario may lose (issue 10, item 9). */
export type FailureBound =
  /** Not one request may fail. */
  | { kind: 'none' }
  /** Failures may last at most `maxSpanMs`, from the first failed attempt's start to the last's. */
  | { kind: 'span'; maxSpanMs: number }
  /**
   * Requests may fail only until `afterFaultMs` after the fault; later, traffic keeps flowing and no
   * answer comes from `deadNode` (it is gone). The probe must run `observeMs` past that mark to judge.
   */
  | { kind: 'until'; afterFaultMs: number; deadNode: string; observeMs: number };

/** The bound in words, for tables and failure messages. */
export function describeBound(bound: FailureBound): string {
  if (bound.kind === 'none') return '0 failed';
  if (bound.kind === 'span') return `failures within ${bound.maxSpanMs} ms`;
  return `no failure after fault + ${bound.afterFaultMs} ms`;
}

/** What breaks `bound` in `report` around a fault at `faultAt` (ms since the epoch); empty when it holds. */
export function boundViolations(report: ProbeReport, faultAt: number, bound: FailureBound): string[] {
  const failed = report.attempts.filter((a) => a.outcome !== 'ok');
  if (bound.kind === 'none') return failed.length === 0 ? [] : [`${failed.length} of ${report.attempts.length} requests failed, 0 allowed`];
  if (bound.kind === 'span') {
    if (failed.length === 0) return [];
    const span = failed[failed.length - 1]!.t - failed[0]!.t;
    return span <= bound.maxSpanMs ? [] : [`requests failed for ${span} ms (${failed.length} failed), at most ${bound.maxSpanMs} ms allowed`];
  }
  const mark = faultAt + bound.afterFaultMs;
  const out: string[] = [];
  if (report.endedAt < mark + bound.observeMs) out.push(`the probe ended ${report.endedAt - faultAt} ms after the fault, too early to judge ${bound.observeMs} ms past fault + ${bound.afterFaultMs} ms`);
  const late = failed.filter((a) => a.t > mark);
  if (late.length > 0) out.push(`${late.length} requests failed later than fault + ${bound.afterFaultMs} ms (the last at fault + ${late[late.length - 1]!.t - faultAt} ms)`);
  const after = report.attempts.filter((a) => a.t > mark && a.outcome === 'ok');
  if (after.length === 0) out.push(`no request succeeded after fault + ${bound.afterFaultMs} ms: traffic did not move to the other hosts`);
  const ghost = after.filter((a) => a.node === bound.deadNode).length;
  if (ghost > 0) out.push(`${ghost} answers came from ${bound.deadNode} after it was killed: the node was not really gone`);
  return out;
}
