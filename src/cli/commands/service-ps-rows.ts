import { parseFilters, passes, type Filters } from '../filter-flag.js';
import { renderTable } from '../table.js';
import type { TaskRecord } from '../../model/records.js';
import type { FinishedTask } from '../../model/task-history.js';

// What `meshnet service ps` prints, as plain data from the stored tasks and their slots' histories: one row per
// task, the current one of a slot first and its finished ones under it (` \_ web.1`), as `docker service ps` does.

/** One line of `service ps`. */
export interface PsRow {
  id: string;
  /** `web.1`. */
  name: string;
  service: string;
  slot: number;
  node: string;
  desiredState: 'running' | 'shutdown';
  /** The task's state (new, starting, running, failed, shutdown). */
  state: string;
  /** When it entered that state (ISO). */
  since: string;
  /** Why it failed or is not running; empty when nothing went wrong. */
  error: string;
  restarts?: number;
  /** A finished task from the slot's history rather than the slot's current task. */
  history: boolean;
}

/** The filters `service ps` takes, as Docker's. */
const PS_FILTERS = { 'desired-state': ['running', 'shutdown'], node: undefined, id: undefined, name: undefined } as const;
const PS_FILTER_FORMS = 'desired-state=running|shutdown, node=NODE, id=PREFIX or name=TASK (e.g. web.1)';

/** Parses `service ps --filter` values; a bad one is a CliError (exit 2) naming the accepted forms. */
export function parsePsFilters(values: readonly string[]): Filters {
  return parseFilters(values, PS_FILTERS, PS_FILTER_FORMS);
}

/** The error a current task shows: why it is not running, not the note of a drain. */
function currentError(t: TaskRecord): string {
  if (t.desiredState === 'running' || t.state === 'failed') return t.message ?? '';
  return '';
}

/** The rows of one service: slot by slot, the current task first, then its finished tasks newest first. */
export function psRows(service: string, tasks: readonly TaskRecord[], history: ReadonlyMap<number, readonly FinishedTask[]>, opts: { global?: boolean } = {}): PsRow[] {
  const slots = [...new Set([...tasks.filter((t) => t.service === service).map((t) => t.slot), ...history.keys()])].sort((a, b) => a - b);
  const rows: PsRow[] = [];
  for (const slot of slots) {
    // Docker names a global service's tasks by node (web.host-a), a replicated one's by slot (web.1).
    const nameOn = (node: string): string => (opts.global ? `${service}.${node}` : `${service}.${slot}`);
    // A slot may hold two current tasks during a start-first update: its task, then the successor (`replaces`).
    const current = tasks.filter((t) => t.service === service && t.slot === slot).sort((a, b) => Number(a.replaces !== undefined) - Number(b.replaces !== undefined));
    for (const t of current) {
      rows.push({
        id: t.id,
        name: nameOn(t.node),
        service,
        slot,
        node: t.node,
        desiredState: t.desiredState,
        state: t.state,
        since: t.updatedAt,
        error: currentError(t),
        restarts: t.restarts,
        history: false,
      });
    }
    for (const h of history.get(slot) ?? []) {
      rows.push({
        id: h.id,
        name: nameOn(h.node),
        service,
        slot,
        node: h.node,
        desiredState: 'shutdown',
        state: h.state,
        since: h.endedAt,
        error: h.error ?? '',
        ...(h.restarts !== undefined ? { restarts: h.restarts } : {}),
        history: true,
      });
    }
  }
  return rows;
}

/** The rows that pass the filters. desired-state=running keeps the current tasks that should run. */
export function selectRows(rows: readonly PsRow[], filters: Filters): PsRow[] {
  const prefix = (given: string, value: string) => value.startsWith(given);
  return rows.filter(
    (r) => passes(filters, 'desired-state', r.desiredState) && passes(filters, 'node', r.node) && passes(filters, 'id', r.id, prefix) && passes(filters, 'name', r.name),
  );
}

/**
 * How long ago, in Docker's words (go-units HumanDuration, as `docker service ps` prints it): "less than a
 * second", "about a minute", "3 minutes", "2 days". Written out because no JavaScript library words it the same.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'about a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'about an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

const title = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** `Running 3 minutes ago`. */
export function currentStateText(r: Pick<PsRow, 'state' | 'since'>, now: Date): string {
  const since = Date.parse(r.since);
  if (!Number.isFinite(since)) return title(r.state);
  return `${title(r.state)} ${humanDuration(Math.max(0, now.getTime() - since))} ago`;
}

/** Docker's width of a truncated task id and error. */
const ID_LENGTH = 12;
const MAX_ERROR_LENGTH = 30;

/** An error as the table shows it: quoted, cut to 30 characters with "…" unless not truncating. */
function errorText(error: string, trunc: boolean): string {
  if (error === '') return '';
  const shown = trunc && error.length > MAX_ERROR_LENGTH ? `${error.slice(0, MAX_ERROR_LENGTH - 1)}…` : error;
  return `"${shown}"`;
}

/** The task ids `service ps -q` prints, each once, in row order. */
export function psIds(rows: readonly PsRow[], trunc: boolean): string[] {
  return [...new Set(rows.map((r) => (trunc ? r.id.slice(0, ID_LENGTH) : r.id)))];
}

/** The `service ps` table: a row that continues the slot of the row above is indented ` \_ web.1`. */
export function renderPsTable(rows: readonly PsRow[], now: Date, trunc: boolean): string {
  let previous = '';
  const cells = rows.map((r) => {
    const name = r.name === previous ? ` \\_ ${r.name}` : r.name;
    previous = r.name;
    return [trunc ? r.id.slice(0, ID_LENGTH) : r.id, name, r.node, title(r.desiredState), currentStateText(r, now), errorText(r.error, trunc)];
  });
  return renderTable(['ID', 'NAME', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR'], cells);
}
