import type { CountedIptables, CountedRule } from './kernel-view.js';

const TABLES = new Set(['nat', 'filter']);

/**
 * Parses `iptables-save -c` output: per table and chain, each rule verbatim (after `-A <chain> `)
 * with its `[packets:bytes]` counters. Only nat and filter are kept (what a published port crosses).
 * Pure. A separate parser from src/mesh's because that one drops counters by design (it compares text).
 */
export function parseCountedIptablesSave(text: string): CountedIptables {
  const out: CountedIptables = {};
  let chains: Record<string, CountedRule[]> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      const table = line.slice(1);
      chains = TABLES.has(table) ? (out[table] = {}) : null;
      continue;
    }
    if (!chains) continue;
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      chains[name] ??= [];
      continue;
    }
    const m = /^(?:\[(\d+):(\d+)\] )?-A (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    (chains[m[3]!] ??= []).push({ rule: m[4] ?? '', packets: Number(m[1] ?? 0), bytes: Number(m[2] ?? 0) });
  }
  return out;
}

/** The DNAT target of a rule (`--to-destination A:P`, or ip6tables' `[A]:P`), or null. */
export function dnatTarget(rule: string): { address: string; port: number | null } | null {
  const m = /-j DNAT --to-destination (?:(\d+\.\d+\.\d+\.\d+)|\[([0-9a-fA-F:.]+)\]|([0-9a-fA-F:]+))(?::(\d+))?(?: |$)/.exec(rule);
  return m ? { address: (m[1] ?? m[2] ?? m[3])!, port: m[4] ? Number(m[4]) : null } : null;
}

/** True when a rule matches protocol and destination port exactly as meshnet writes them (`-p tcp -m tcp --dport 80`). */
export function matchesPort(rule: string, protocol: string, port: number): boolean {
  const tokens = rule.split(' ');
  const p = tokens.indexOf('-p');
  const d = tokens.indexOf('--dport');
  return p >= 0 && tokens[p + 1] === protocol && d >= 0 && tokens[d + 1] === String(port);
}

/** True when the rule jumps to `chain`. */
export function jumpsTo(rule: string, chain: string): boolean {
  return new RegExp(`(^| )-j ${chain.replace(/[-.]/g, '\\$&')}( |$)`).test(rule);
}
