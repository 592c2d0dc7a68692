import type { IptablesTable } from './iptables-ruleset.js';

/** Chains and their rules as `iptables-save` prints them, per table. */
export type IptablesState = Map<IptablesTable, Map<string, string[]>>;

const TABLES: ReadonlySet<string> = new Set(['nat', 'filter', 'mangle']);

/** Parses `iptables-save` output; rules are kept verbatim after `-A <chain> `. Tables we never touch are skipped. */
export function parseIptablesSave(text: string): IptablesState {
  const state: IptablesState = new Map();
  let chains: Map<string, string[]> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      const table = line.slice(1);
      chains = TABLES.has(table) ? new Map() : null;
      if (chains) state.set(table as IptablesTable, chains);
      continue;
    }
    if (!chains) continue;
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      if (!chains.has(name)) chains.set(name, []);
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      const chain = space < 0 ? rest : rest.slice(0, space);
      const rule = space < 0 ? '' : rest.slice(space + 1);
      const list = chains.get(chain) ?? [];
      list.push(rule);
      chains.set(chain, list);
    }
  }
  return state;
}

/** True when `rule` carries exactly `--comment <comment>` (quoted or not). */
export function hasComment(rule: string, comment: string): boolean {
  const tokens = rule.split(' ');
  for (let i = 0; i < tokens.length - 1; i++) {
    if (tokens[i] === '--comment' && (tokens[i + 1] === comment || tokens[i + 1] === `"${comment}"`)) return true;
  }
  return false;
}
