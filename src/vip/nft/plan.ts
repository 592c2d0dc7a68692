import { elementText, sameElement, sortedKeys, STATIC_MAP_NAMES, TABLE_REF, type MapElement, type NftModel, type StaticMapName } from './model.js';
import { fullScriptSteps } from './render.js';
import { runSync, type Steps } from './sliced.js';

/** One nft transaction: the script for `nft -f -` and how many objects it writes or deletes. */
export interface NftPlan {
  mode: 'full' | 'incremental';
  /** Commands, one per line. Empty when nothing changed. */
  script: string;
  /** Commands in the script (for full mode: objects in the new table). */
  ops: number;
}

function sameRules(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Plans the atomic full rebuild (first sync, periodic reconcile): the table is replaced in one transaction. */
export function planFull(next: NftModel): NftPlan {
  return runSync(planFullSteps(next));
}

/** planFull as steps (see sliced.ts). */
export function* planFullSteps(next: NftModel): Steps<NftPlan> {
  const script = yield* fullScriptSteps(next);
  let ops = 0;
  let n = 0;
  for (const line of script.split('\n')) {
    if (line.trim() && !line.trim().endsWith('{') && line.trim() !== '}') ops++;
    if ((++n & 4095) === 0) yield;
  }
  return { mode: 'full', script, ops };
}

/**
 * Plans the smallest transaction turning `prev` into `next`: only changed elements, sets and
 * chains appear, so one backend change costs the same at 10 or 10,000 services. The phases are
 * ordered so that nothing is deleted while still referenced and nothing is referenced before it
 * exists: element deletes, chain flushes, set/chain deletes, set/chain adds, rules, element adds.
 */
export function planIncremental(prev: NftModel, next: NftModel): NftPlan {
  const delElements: string[] = [];
  const addElements: string[] = [];
  for (const name of STATIC_MAP_NAMES) diffMap(name, prev.maps.get(name)!, next.maps.get(name)!, delElements, addElements);

  const flushes: string[] = [];
  const deletes: string[] = [];
  const adds: string[] = [];
  const rules: string[] = [];

  // A changed set (its timeout) is recreated; the chains using it are rewritten around that.
  const recreatedSets = new Set<string>();
  for (const name of sortedKeys(prev.sets)) {
    const want = next.sets.get(name);
    if (want === undefined) deletes.push(`delete set ${TABLE_REF} ${name}`);
    else if (want !== prev.sets.get(name)) {
      deletes.push(`delete set ${TABLE_REF} ${name}`);
      recreatedSets.add(name);
    }
  }
  for (const name of sortedKeys(next.sets)) {
    if (!prev.sets.has(name) || recreatedSets.has(name)) adds.push(`add set ${TABLE_REF} ${name} { ${next.sets.get(name)} }`);
  }
  const usesRecreatedSet = (rs: readonly string[]) => recreatedSets.size > 0 && rs.some((r) => [...recreatedSets].some((s) => r.includes(`@${s} `)));

  const deletedChains: string[] = [];
  for (const name of sortedKeys(prev.chains)) {
    const old = prev.chains.get(name)!;
    const want = next.chains.get(name);
    if (want === undefined) {
      flushes.push(`flush chain ${TABLE_REF} ${name}`);
      deletedChains.push(`delete chain ${TABLE_REF} ${name}`);
    } else if (!sameRules(old, want) || usesRecreatedSet(old)) {
      flushes.push(`flush chain ${TABLE_REF} ${name}`);
      for (const r of want) rules.push(`add rule ${TABLE_REF} ${name} ${r}`);
    }
  }
  for (const name of sortedKeys(next.chains)) {
    if (prev.chains.has(name)) continue;
    adds.push(`add chain ${TABLE_REF} ${name}`);
    for (const r of next.chains.get(name)!) rules.push(`add rule ${TABLE_REF} ${name} ${r}`);
  }
  // Deleted chains go before deleted sets: their (flushed) rules were the sets' last users.
  const lines = [...delElements, ...flushes, ...deletedChains, ...deletes, ...adds, ...rules, ...addElements];
  return { mode: 'incremental', script: lines.length ? lines.join('\n') + '\n' : '', ops: lines.length };
}

function diffMap(name: StaticMapName, prev: Map<string, MapElement>, next: Map<string, MapElement>, del: string[], add: string[]): void {
  for (const key of sortedKeys(prev)) {
    if (!sameElement(prev.get(key), next.get(key))) del.push(`delete element ${TABLE_REF} ${name} { ${key} }`);
  }
  for (const key of sortedKeys(next)) {
    const want = next.get(key)!;
    if (!sameElement(prev.get(key), want)) add.push(`add element ${TABLE_REF} ${name} { ${elementText(key, want)} }`);
  }
}
