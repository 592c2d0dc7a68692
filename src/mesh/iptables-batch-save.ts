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
  // A marker no iptables-save line can start with: each section begins with it and the namespace.
  const mark = `#meshnet-${randomBytes(8).toString('hex')}`;
  const script = 'tool=$1; table=$2; mark=$3; shift 3; for ns in "$@"; do printf "%s %s\\n" "$mark" "$ns"; nsenter --net="$ns" -- "$tool" -t "$table" || printf "%s failed\\n" "$mark"; done';
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
    const close = (): void => {
      if (current !== null) out.set(current, lines.join('\n') + '\n');
    };
    for (const line of r.stdout.split('\n')) {
      if (line === `${mark} failed`) {
        if (current !== null) out.set(current, null);
        current = null;
      } else if (line.startsWith(`${mark} `)) {
        close();
        current = line.slice(mark.length + 1);
        lines = [];
      } else if (current !== null) lines.push(line);
    }
    close();
  }
  // Namespaces the shell never reached (it was killed): unread.
  for (const ns of netnsList) if (!out.has(ns)) out.set(ns, null);
  return out;
}
