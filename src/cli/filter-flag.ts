import { CliError, EXIT } from './cli-context.js';

/** Docker's --filter KEY=VALUE values, by key: values of one key match when any does, keys must all match. */
export type Filters = ReadonlyMap<string, readonly string[]>;

/**
 * Parses repeated `--filter KEY=VALUE` values. `allowed` maps each key to the values it takes (undefined: any
 * non-empty value) and `forms` shows them in the error a bad filter gets (exit 2).
 */
export function parseFilters(values: readonly string[], allowed: Readonly<Record<string, readonly string[] | undefined>>, forms: string): Filters {
  const out = new Map<string, string[]>();
  for (const text of values) {
    const eq = text.indexOf('=');
    const key = eq < 0 ? text : text.slice(0, eq);
    const value = eq < 0 ? '' : text.slice(eq + 1);
    if (!Object.hasOwn(allowed, key)) throw new CliError(`invalid --filter ${JSON.stringify(text)}: unknown key ${JSON.stringify(key)}; use ${forms}`, EXIT.usage);
    const choices = allowed[key];
    if (value === '' || (choices !== undefined && !choices.includes(value))) {
      throw new CliError(`invalid --filter ${JSON.stringify(text)}: ${key} takes ${choices ? choices.join('|') : 'a value'}; use ${forms}`, EXIT.usage);
    }
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** Whether `value` passes the filter on `key` (no filter on it: yes); `match` compares one given value. */
export function passes(filters: Filters, key: string, value: string, match: (given: string, value: string) => boolean = (g, v) => g === v): boolean {
  const given = filters.get(key);
  return given === undefined || given.some((g) => match(g, value));
}
