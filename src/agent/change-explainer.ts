/** How many ids or keys a one-line explanation names before it says "and N more". */
const NAMED = 4;

/** Why a target was applied, as the reconciler knows it before applying. */
export type ApplyReason = 'new' | 'changed' | 'retry' | 'resync';

function named(items: readonly string[]): string {
  return items.length <= NAMED ? items.join(', ') : `${items.slice(0, NAMED).join(', ')} and ${items.length - NAMED} more`;
}

function hasId(v: unknown): v is { id: string } {
  return typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string';
}

/** Items of a list keyed by id: which came, went, or changed. */
function listDiff(before: readonly { id: string }[], after: readonly { id: string }[]): string {
  const old = new Map(before.map((x) => [x.id, x]));
  const added: string[] = [];
  const changed: string[] = [];
  for (const x of after) {
    const was = old.get(x.id);
    old.delete(x.id);
    if (was === undefined) added.push(x.id);
    else if (was !== x && JSON.stringify(was) !== JSON.stringify(x)) changed.push(x.id);
  }
  const parts = [added.length ? `added ${named(added)}` : '', [...old.keys()].length ? `removed ${named([...old.keys()])}` : '', changed.length ? `changed ${named(changed)}` : ''];
  return parts.filter(Boolean).join('; ') || 'reordered';
}

/**
 * One line saying what differs between the value a target last held and the one it gets: for
 * lists of objects with ids (load-balancing services, rules), which ids came, went or changed;
 * for objects, which fields differ; for plain values, old -> new. Run only when debug logging is
 * on: it walks the values, which a pass at info level must not pay for.
 */
export function explainChange(before: unknown, after: unknown): string {
  if (Array.isArray(before) && Array.isArray(after) && before.every(hasId) && after.every(hasId)) return listDiff(before, after);
  if (typeof before === 'object' && before !== null && typeof after === 'object' && after !== null && !Array.isArray(before) && !Array.isArray(after)) {
    const b = before as Record<string, unknown>;
    const a = after as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    const differing = keys.filter((k) => b[k] !== a[k] && JSON.stringify(b[k]) !== JSON.stringify(a[k]));
    // A single differing list of ids (an LB table's services) is worth opening.
    if (differing.length === 1) {
      const k = differing[0]!;
      const bv = b[k];
      const av = a[k];
      if (Array.isArray(bv) && Array.isArray(av) && bv.every(hasId) && av.every(hasId)) return `${k}: ${listDiff(bv, av)}`;
    }
    return differing.length ? `fields ${named(differing)}` : 'same content';
  }
  return `${short(before)} -> ${short(after)}`;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
