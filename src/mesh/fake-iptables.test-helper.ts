import type { IptablesTable } from './iptables-ruleset.js';
import type { IptablesState } from './iptables-save-parse.js';

const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/**
 * A fake `iptables-restore --noflush` over parsed state, strict where the kernel is: -D of a
 * missing rule, -X of a referenced or non-empty chain and jumps to unknown chains all fail.
 */
export function fakeRestore(state: IptablesState, script: string): IptablesState {
  const next: IptablesState = new Map([...state].map(([t, chains]) => [t, new Map([...chains].map(([c, r]) => [c, [...r]]))]));
  let chains: Map<string, string[]> | null = null;
  for (const line of script.split('\n')) {
    if (line === '' || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      const table = line.slice(1) as IptablesTable;
      chains = next.get(table) ?? new Map();
      next.set(table, chains);
      continue;
    }
    if (!chains) throw new Error(`line outside a table: ${line}`);
    const tokens = line.split(' ');
    const op = tokens[0]!;
    const chain = tokens[1]!;
    if (op.startsWith(':')) {
      chains.set(op.slice(1), []);
    } else if (op === '-A' || op === '-I' || op === '-D') {
      const list = chains.get(chain) ?? (BUILTIN.has(chain) ? [] : undefined);
      if (!list) throw new Error(`no chain ${chain}`);
      chains.set(chain, list);
      const rule = tokens.slice(op === '-I' ? 3 : 2).join(' ');
      const target = /-j (\S+)/.exec(rule)?.[1];
      if (op !== '-D' && target && /^[A-Z-]+$/.test(target) && target.includes('-') && !chains.has(target)) {
        throw new Error(`jump to unknown chain ${target}`);
      }
      if (op === '-A') list.push(rule);
      else if (op === '-I') list.splice(Number(tokens[2]) - 1, 0, rule);
      else {
        const at = list.indexOf(rule);
        if (at < 0) throw new Error(`-D of a missing rule: ${line}`);
        list.splice(at, 1);
      }
    } else if (op === '-X') {
      if (!chains.has(chain)) throw new Error(`-X of missing chain ${chain}`);
      if ((chains.get(chain) ?? []).length > 0) throw new Error(`-X of non-empty chain ${chain}`);
      for (const rules of chains.values()) {
        if (rules.some((r) => r.endsWith(`-j ${chain}`))) throw new Error(`-X of referenced chain ${chain}`);
      }
      chains.delete(chain);
    } else {
      throw new Error(`unsupported line ${line}`);
    }
  }
  return next;
}
