import { describeBound } from './reliability-bounds.js';
import type { ScenarioResult } from './reliability-scenarios.js';

const ms = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${v}`);

/** Several lines that explain one scenario's run: figures, verdict, violations, agent log digests. */
export function formatScenario(r: ScenarioResult): string {
  const s = r.summary;
  const lines = [`[${r.violations.length === 0 ? 'PASS' : 'FAIL'}] ${r.name}: ${r.title}; bound: ${describeBound(r.bound)}`];
  if (s) {
    const outcomes = Object.entries(s.byOutcome).filter(([o]) => o !== 'ok').map(([o, n]) => `${o} ${n}`).join(', ');
    lines.push(`  ${s.attempts} attempts, ${s.failed} failed (${outcomes}); failure span ${ms(s.failureSpanMs)} ms; failures from fault ${ms(s.firstFailureMs)} to ${ms(s.lastFailureMs)} ms; probed ${s.probedBeforeMs} ms before and ${s.probedAfterMs} ms after the fault`);
    lines.push(`  answered by: ${Object.entries(s.answeredBy).map(([who, n]) => `${who} ${n}`).join(', ') || 'nobody'}`);
    if (s.failureDetails.length > 0) lines.push(`  failures: ${s.failureDetails.join('; ')}`);
    if (s.burstCount > 0) {
      const shown = s.bursts.map((b) => `${b.count} at ${b.fromMs}${b.toMs !== b.fromMs ? `..${b.toMs}` : ''}`).join(', ');
      lines.push(`  failure bursts (ms from fault): ${shown}${s.burstCount > s.bursts.length ? `, ... (${s.burstCount} bursts)` : ''}`);
    }
  }
  const figures = Object.entries(r.figures).map(([k, v]) => `${k}=${v === null ? '-' : v}`).join(', ');
  if (figures) lines.push(`  figures: ${figures}`);
  for (const v of r.violations) lines.push(`  violation: ${v}`);
  for (const [host, digest] of Object.entries(r.agentLogs)) lines.push(`  ${host} agent: ${digest}`);
  return lines.join('\n');
}

/** A table with one row per scenario, for the bench. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const header = ['scenario', 'attempts', 'failed', 'refused', 'timeout', 'reset', 'wrong', 'other', 'span ms', 'last fail ms', 'bound', 'verdict'];
  const rows = results.map((r) => {
    const s = r.summary;
    return [
      r.name,
      ms(s?.attempts),
      ms(s?.failed),
      ms(s?.byOutcome.refused),
      ms(s?.byOutcome.timeout),
      ms(s?.byOutcome.reset),
      ms(s?.byOutcome.wrong),
      ms(s?.byOutcome.error),
      ms(s?.failureSpanMs),
      ms(s?.lastFailureMs),
      describeBound(r.bound),
      r.violations.length === 0 ? 'pass' : r.error ? 'error' : 'FAIL',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The bench's one JSON line: failed requests, failure span and verdict per scenario (null: it did not run). */
export function benchFigures(results: readonly ScenarioResult[]): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = { bench: 'reliability' };
  for (const r of results) {
    out[`${r.name}_failed`] = r.summary?.failed ?? null;
    out[`${r.name}_attempts`] = r.summary?.attempts ?? null;
    out[`${r.name}_failure_span_ms`] = r.summary?.failureSpanMs ?? null;
    out[`${r.name}_last_failure_after_fault_ms`] = r.summary?.lastFailureMs ?? null;
    out[`${r.name}_pass`] = r.violations.length === 0;
  }
  out['scenarios_passed'] = results.filter((r) => r.violations.length === 0).length;
  out['scenarios'] = results.length;
  return out;
}
