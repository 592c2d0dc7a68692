import type { Explanation, Hop } from './explanation.js';

const MARK: Record<Hop['status'], string> = { ok: 'ok  ', warn: 'WARN', stop: 'STOP' };

function hopLines(h: Hop, indent: string): string[] {
  const out = [`${indent}[${MARK[h.status]}] ${h.node} ${h.namespace}: ${h.title}`];
  for (const d of h.details) out.push(`${indent}       ${d}`);
  for (const p of h.problems) out.push(`${indent}       ${p.severity === 'stop' ? 'stops' : 'warning'}: ${p.message}`, `${indent}       fix: ${p.fix}`);
  return out;
}

/** The explanation as people read it: the verdict first, then each hop with its counters, problems and fixes. */
export function renderExplanation(e: Explanation): string {
  const out = [`${e.target}${e.service ? ` (service ${e.service})` : ''}: ${e.verdict.toUpperCase()}`, `  ${e.summary}`];
  for (const h of e.hops) out.push(...hopLines(h, '  '));
  for (const b of e.backends) {
    out.push(`  -> backend ${b.address}:${b.port}${b.task ? ` ${b.task} on ${b.node}` : ''}, weight ${b.weight}, ${Math.round(b.share * 1000) / 10}% of new connections: ${b.weight === 0 ? 'draining' : b.delivered ? 'delivered' : 'STOPS'}`);
    for (const h of b.hops) out.push(...hopLines(h, '     '));
  }
  if (e.idleTasks.length > 0) {
    out.push('  tasks that are not backends:');
    for (const t of e.idleTasks) out.push(`     ${t.task} on ${t.node}: ${t.reason}`);
  }
  return out.join('\n');
}
