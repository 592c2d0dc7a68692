import { describe, expect, it } from 'vitest';
import { benchFigures, formatScenario, formatTable } from './reliability-report.js';
import type { ScenarioResult } from './reliability-scenarios.js';

const passed: ScenarioResult = {
  name: 'graceful_restart',
  title: 'graceful agent restart',
  bound: { kind: 'none' },
  summary: {
    attempts: 800,
    ok: 800,
    failed: 0,
    byOutcome: { ok: 800, refused: 0, timeout: 0, reset: 0, wrong: 0, error: 0 },
    firstFailureMs: null,
    lastFailureMs: null,
    failureSpanMs: null,
    probedBeforeMs: 1000,
    probedAfterMs: 15_000,
    answeredBy: { 'web.1@host-a': 400, 'web.2@host-b': 400 },
    failureDetails: [],
    bursts: [],
    burstCount: 0,
  },
  violations: [],
  figures: { agentDownMs: 120 },
  agentLogs: { 'host-a': 'agent.started x1' },
};

const failed: ScenarioResult = {
  ...passed,
  name: 'node_loss',
  title: 'node loss',
  bound: { kind: 'until', afterFaultMs: 11_000, deadNode: 'host-c', observeMs: 6000 },
  summary: { ...passed.summary!, ok: 700, failed: 100, byOutcome: { ...passed.summary!.byOutcome, ok: 700, timeout: 60, refused: 40 }, firstFailureMs: 20, lastFailureMs: 16_000, failureSpanMs: 15_980, failureDetails: ['timeout: no answer within the timeout'], bursts: [{ fromMs: 20, toMs: 8000, count: 60 }, { fromMs: 16_000, toMs: 16_000, count: 40 }], burstCount: 2 },
  violations: ['40 requests failed later than fault + 11000 ms (the last at fault + 16000 ms)'],
};

const notRun: ScenarioResult = { ...passed, name: 'store_outage', summary: null, violations: ['the scenario could not run: boom'], error: 'boom', figures: {}, agentLogs: {} };

describe('reliability report', () => {
  it('explains a failing scenario with its figures, violations and agent logs', () => {
    const text = formatScenario(failed);
    expect(text.split('\n')[0]).toBe('[FAIL] node_loss: node loss; bound: no failure after fault + 11000 ms');
    expect(text).toContain('800 attempts, 100 failed (refused 40, timeout 60, reset 0, wrong 0, error 0); failure span 15980 ms; failures from fault 20 to 16000 ms');
    expect(text).toContain('failure bursts (ms from fault): 60 at 20..8000, 40 at 16000');
    expect(text).toContain('violation: 40 requests failed later than fault + 11000 ms');
    expect(text).toContain('host-a agent: agent.started x1');
  });

  it('tabulates every scenario with its verdict', () => {
    const rows = formatTable([passed, failed, notRun]).split('\n');
    expect(rows).toHaveLength(4);
    expect(rows[1]).toMatch(/^graceful_restart\s+800\s+0\s.*0 failed\s+pass$/);
    expect(rows[2]).toMatch(/^node_loss\s+800\s+100\s+40\s+60\s.*FAIL$/);
    expect(rows[3]).toMatch(/^store_outage\s+-\s+-.*error$/);
  });

  it('names the failed-request count of every scenario in the bench figures', () => {
    expect(benchFigures([passed, failed, notRun])).toMatchObject({
      bench: 'reliability',
      graceful_restart_failed: 0,
      graceful_restart_pass: true,
      node_loss_failed: 100,
      node_loss_last_failure_after_fault_ms: 16_000,
      node_loss_pass: false,
      store_outage_failed: null,
      scenarios_passed: 1,
      scenarios: 3,
    });
  });
});
