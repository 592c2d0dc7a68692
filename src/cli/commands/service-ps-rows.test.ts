import { describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../model/records.js';
import type { FinishedTask } from '../../model/task-history.js';
import { CliError } from '../cli-context.js';
import { taskRecord } from './task-record.test-data.js';
import { humanDuration, parsePsFilters, psIds, psRows, renderPsTable, selectRows } from './service-ps-rows.js';

const now = new Date('2026-01-01T01:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString();
const task = (slot: number, over: Partial<TaskRecord> = {}): TaskRecord => taskRecord('web', slot, { id: `c${slot}`.padEnd(24, 'a'), updatedAt: minutesAgo(3), ...over });
const finished = (id: string, endedMinutesAgo: number, over: Partial<FinishedTask> = {}): FinishedTask => ({
  id: id.padEnd(24, 'f'),
  node: 'host-b',
  state: 'failed',
  error: 'exit 1',
  endedAt: minutesAgo(endedMinutesAgo),
  ...over,
});

const tasks = [task(2, { node: 'host-b', state: 'failed', message: 'exit 1', restarts: 4 }), task(1), task(3, { desiredState: 'shutdown', message: 'draining for 5s' })];
const history = new Map([
  [2, [finished('h2b', 5), finished('h2a', 9, { error: 'killed by SIGKILL, which is a rather long reason to show' })]],
  [4, [finished('h4', 60, { state: 'shutdown', error: undefined, node: 'host-c' })]],
]);
const rows = psRows('web', tasks, history);

describe('service ps rows', () => {
  it('list each slot’s current task, then its finished ones newest first; a slot with history only shows too', () => {
    expect(rows.map((r) => [r.name, r.history, r.id.slice(0, 3)])).toEqual([
      ['web.1', false, 'c1a'],
      ['web.2', false, 'c2a'],
      ['web.2', true, 'h2b'],
      ['web.2', true, 'h2a'],
      ['web.3', false, 'c3a'],
      ['web.4', true, 'h4f'],
    ]);
    // A drain's note is no error; a failed current task shows its reason.
    expect(rows.map((r) => r.error)).toEqual(['', 'exit 1', 'exit 1', 'killed by SIGKILL, which is a rather long reason to show', '', '']);
  });

  it('list a start-first successor after the task it replaces', () => {
    const successor = task(1, { id: 'd1'.padEnd(24, 'a'), replaces: task(1).id, state: 'starting' });
    expect(psRows('web', [successor, task(1)], new Map()).map((r) => r.id.slice(0, 2))).toEqual(['c1', 'd1']);
  });

  it('render as Docker does: indented history, states with their age, errors quoted and cut to 30', () => {
    const lines = renderPsTable(rows, now, true).split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR$/);
    expect(lines[1]).toMatch(/^c1aaaaaaaaaa\s+web\.1\s+host-a\s+Running\s+Running 3 minutes ago\s*$/);
    expect(lines[2]).toMatch(/^c2aaaaaaaaaa\s+web\.2\s+host-b\s+Running\s+Failed 3 minutes ago\s+"exit 1"$/);
    expect(lines[3]).toMatch(/^h2bfffffffff\s+\\_ web\.2\s+host-b\s+Shutdown\s+Failed 5 minutes ago\s+"exit 1"$/);
    expect(lines[4]).toMatch(/^h2afffffffff\s+\\_ web\.2\s+host-b\s+Shutdown\s+Failed 9 minutes ago\s+"killed by SIGKILL, which is a…"$/);
    expect(lines[5]).toMatch(/^c3aaaaaaaaaa\s+web\.3\s+host-a\s+Shutdown\s+Running 3 minutes ago\s*$/);
    expect(lines[6]).toMatch(/^h4ffffffffff\s+web\.4\s+host-c\s+Shutdown\s+Shutdown about an hour ago\s*$/);
    const full = renderPsTable(rows, now, false);
    expect(full).toContain(`${'h2a'.padEnd(24, 'f')}    \\_ web.2   host-b`);
    expect(full).toContain('"killed by SIGKILL, which is a rather long reason to show"');
  });

  it('filter by desired state, node, id prefix and task name; -q prints each id once', () => {
    const f = (...v: string[]) => selectRows(rows, parsePsFilters(v)).map((r) => r.id.slice(0, 3));
    expect(f('desired-state=running')).toEqual(['c1a', 'c2a']);
    expect(f('desired-state=shutdown')).toEqual(['h2b', 'h2a', 'c3a', 'h4f']);
    expect(f('node=host-b', 'desired-state=shutdown')).toEqual(['h2b', 'h2a']);
    expect(f('id=h2')).toEqual(['h2b', 'h2a']);
    expect(f('name=web.4')).toEqual(['h4f']);
    const restarted = psRows('web', [task(1)], new Map([[1, [finished(task(1).id, 1)]]]));
    expect(psIds(restarted, true)).toEqual(['c1aaaaaaaaaa']);
    expect(psIds(rows, false)[0]).toHaveLength(24);
    expect(() => parsePsFilters(['desired-state=accepted'])).toThrow(/desired-state takes running\|shutdown/);
    expect(() => parsePsFilters(['label=x'])).toThrow(CliError);
  });

  it('word ages as go-units HumanDuration does', () => {
    const cases: [number, string][] = [
      [500, 'less than a second'],
      [1000, '1 second'],
      [59_000, '59 seconds'],
      [61_000, 'about a minute'],
      [3 * 60_000, '3 minutes'],
      [59 * 60_000, '59 minutes'],
      [89 * 60_000, 'about an hour'],
      [5 * 3_600_000, '5 hours'],
      [3 * 86_400_000, '3 days'],
      [20 * 86_400_000, '2 weeks'],
      [90 * 86_400_000, '3 months'],
      [800 * 86_400_000, '2 years'],
    ];
    for (const [ms, words] of cases) expect(humanDuration(ms), String(ms)).toBe(words);
  });

  it('names a global service\'s tasks, current and finished, by node as Docker does', () => {
    const g = psRows('web', [task(1, { node: 'host-a' }), task(2, { node: 'host-b' })], new Map([[2, [finished('h2', 5, { node: 'host-b' })]]]), { global: true });
    expect(g.map((r) => r.name)).toEqual(['web.host-a', 'web.host-b', 'web.host-b']);
  });
});
