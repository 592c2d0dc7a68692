import { randomBytes } from 'node:crypto';
import { execIn } from '../sandbox/exec.js';
import type { IptablesTable } from './iptables-ruleset.js';

/** Namespaces per process at most: keeps the argument list far below ARG_MAX at any cluster size. */
const CHUNK = 200;
/** Shells reading at once: each read is an iptables-save process of its own, CPU-bound, and a host has few cores to spare. */
const SHELLS = 2;
const TIMEOUT_MS = 60_000;

/**
 * One table as `tool` (iptables-save or a flavour of it) prints it in each namespace, read by a shell
 * (two, each with half of them) that enters them in turn. The agent's own process pays one spawn instead of one per namespace: a
 * spawn from a ~100 MB agent costs it ~15-20 ms of CPU, most of what reading a hundred tasks' tables
 * at a restart took. A namespace whose read failed maps to null (its own apply reads it and reports).
 */
export async function saveTableIn(netnsList: readonly string[], tool: string, table: IptablesTable): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  // A marker no iptables-save line can start with: each section begins with it and the namespace, and
  // counts only once closed by `ok` (a shell killed mid-read leaves a truncated section, never a short table).
  const mark = `#meshnet-${randomBytes(8).toString('hex')}`;
  const script = 'tool=$1; table=$2; mark=$3; shift 3; for ns in "$@"; do printf "%s %s\\n" "$mark" "$ns"; if nsenter --net="$ns" -- "$tool" -t "$table"; then printf "%s ok\\n" "$mark"; fi; done';
  const size = Math.min(CHUNK, Math.ceil(netnsList.length / SHELLS));
  const chunks: (readonly string[])[] = [];
  for (let i = 0; i < netnsList.length; i += size) chunks.push(netnsList.slice(i, i + size));
  const results = [];
  for (let i = 0; i < chunks.length; i += SHELLS) {
    results.push(...(await Promise.all(chunks.slice(i, i + SHELLS).map((chunk) => execIn(null, ['sh', '-c', script, 'sh', tool, table, mark, ...chunk], { allowFailure: true, timeoutMs: TIMEOUT_MS })))));
  }
  for (const r of results) {
    let current: string | null = null;
    let lines: string[] = [];
    for (const line of r.stdout.split('\n')) {
      if (line === `${mark} ok`) {
        if (current !== null) out.set(current, lines.join('\n') + '\n');
        current = null;
      } else if (line.startsWith(`${mark} `)) {
        current = line.slice(mark.length + 1);
        lines = [];
      } else if (current !== null) lines.push(line);
    }
  }
  // Namespaces whose read failed, was cut short or never began: unread.
  for (const ns of netnsList) if (!out.has(ns)) out.set(ns, null);
  return out;
}
