import type { LbTable, VirtualService } from '../lb-table.js';
import { combine, definitionKey, digestTerm, setDigestElement, type TableDigest } from './digest.js';
import { InvalidLbTableError } from './errors.js';
import { emptyModel, type NftModel } from './model.js';
import { planFullSteps, planIncremental, type NftPlan } from './plan.js';
import { addFragment, layoutTerm, renderService, sharedChainOf, type ServiceFragment } from './render.js';
import { runSliced, runSync, type Steps } from './sliced.js';
import { frontendKey, validateService } from './validate-table.js';

interface CachedService {
  svc: VirtualService;
  /** definitionKey(svc): equal keys render equally. */
  key: string;
  /** Rendered when first needed (a change, a removal, a full load): adopting 10,000 services renders none. */
  frag: ServiceFragment | null;
  /** The shared selection chain it dispatches to, if any (reference-counted). */
  shared: [string, readonly string[]] | null;
  term: TableDigest;
  /** Its index in the last committed table: `services[index] === svc` there. */
  index: number;
}

/** One service that differs between the last commit and the planned table (null: absent on that side). */
export interface ServiceChange {
  before: VirtualService | null;
  after: VirtualService | null;
}

/** A computed transaction and how to record it once the kernel accepted it. */
export interface PendingSync {
  /** The transaction; a full one is rendered on first access (not at all when an adoption needs none). */
  readonly plan: NftPlan;
  /** Renders the transaction in slices that let the event loop turn (a full one of 10k services takes a second). */
  prepare(): Promise<void>;
  /** The services that differ from the last commit (empty on the first plan): O(changed). */
  changes: ServiceChange[];
  /** The digest of the planned table, as the transaction writes it into the kernel. */
  digest: TableDigest;
  /** Call only after nft succeeded: the cache then describes the kernel. */
  commit(): void;
}

/**
 * What meshnet last applied to one namespace's kernel, per service: the service, its definition
 * key and digest term, its rendered fragment once needed, and the running table digest. Planning costs O(changed), not
 * O(services): callers build tables with structural sharing (an unchanged VirtualService is the
 * same object as in the previous table), so a service at the same index and identical to the
 * last one is skipped at the cost of one comparison; a different object with the same id is
 * compared by a canonical key and re-rendered only when that differs, so fresh objects stay
 * correct, only slower.
 */
export class ElementCache {
  private byId: Map<string, CachedService> | null = null;
  /**
   * The last committed table's services, in order. The fast path compares the new table with it
   * slot by slot: pointer comparisons over two contiguous arrays, without touching the service
   * or cache objects, which is what keeps a 10,000-service plan in microseconds.
   */
  private order: VirtualService[] = [];
  /** Shared selection chain -> how many services use it. */
  private sharedRefs = new Map<string, number>();
  /** frontend key / fwmark -> service id, so a sync checks uniqueness for changed services only. */
  private owners = new Map<string, string>();
  private digest: TableDigest = layoutTerm();

  /** True once something was applied or adopted. */
  get known(): boolean {
    return this.byId !== null;
  }

  /** The transaction that takes the kernel to `next`: incremental when the cache knows the kernel, else full. */
  plan(next: LbTable, opts: { full?: boolean } = {}): PendingSync {
    return runSync(this.planSteps(next, opts));
  }

  /** As plan(), letting the event loop turn every few ms: for full plans and first plans of big tables. */
  planSliced(next: LbTable, opts: { full?: boolean } = {}): Promise<PendingSync> {
    return runSliced(this.planSteps(next, opts));
  }

  private *planSteps(next: LbTable, opts: { full?: boolean }): Steps<PendingSync> {
    if (!next || !Array.isArray(next.services)) throw new InvalidLbTableError('services must be a list');
    // The plan's steps run later (lazily, or sliced): they reach the cache through this name.
    const cache = this;
    const prev = this.byId;
    const full = !prev || !!opts.full;
    const list = next.services;
    /** Index -> the entry for list[i], where the identity fast path missed. */
    const placed: Array<[number, CachedService]> = [];
    const refreshed: Array<[CachedService, VirtualService]> = [];
    const changed: Array<[CachedService | undefined, CachedService]> = [];
    const matchedSlow = new Set<CachedService>();
    const fresh = new Set<string>();
    const misses = identityMisses(list, this.order);
    const fastHits = list.length - misses.length;
    for (let k = 0; k < misses.length; k++) {
      if ((k & 255) === 255) yield;
      const i = misses[k]!;
      const svc = list[i]!;
      if (!svc || typeof svc !== 'object') throw new InvalidLbTableError(`service ${i} is not an object`);
      const old = prev && typeof svc.id === 'string' ? prev.get(svc.id) : undefined;
      if (old) {
        // The same id twice: met here before, or its old object still sits at its old index.
        if (matchedSlow.has(old) || (old.index !== i && list[old.index] === old.svc)) throw duplicateId(svc.id);
        matchedSlow.add(old);
        if (old.svc === svc) {
          placed.push([i, old]);
          continue;
        }
        const key = definitionKey(svc);
        if (key !== null && key === old.key) {
          refreshed.push([old, svc]);
          placed.push([i, old]);
          continue;
        }
        validateService(svc);
        const entry = entryOf(svc, key);
        changed.push([old, entry]);
        placed.push([i, entry]);
        continue;
      }
      validateService(svc);
      if (fresh.has(svc.id)) throw duplicateId(svc.id);
      fresh.add(svc.id);
      const entry = entryOf(svc, null);
      changed.push([undefined, entry]);
      placed.push([i, entry]);
    }
    // Scan for removed services only when some are (the common sync changes a few and removes none).
    const removed: CachedService[] = [];
    if (prev && fastHits + matchedSlow.size < prev.size) {
      let n = 0;
      for (const e of prev.values()) {
        if (list[e.index] !== e.svc && !matchedSlow.has(e)) removed.push(e);
        if ((++n & 1023) === 0) yield;
      }
    }

    const changes: ServiceChange[] = prev
      ? [...changed.map(([b, a]): ServiceChange => ({ before: b?.svc ?? null, after: a.svc })), ...removed.map((e): ServiceChange => ({ before: e.svc, after: null }))]
      : [];

    // Uniqueness: a full sync checks every service; an incremental one only the keys that move.
    let applyOwners: () => void;
    if (full) {
      // Built here, in slices, rather than at commit: at 10,000 services it is tens of ms.
      const owners = new Map<string, string>();
      for (let i = 0; i < list.length; i++) {
        const svc = list[i]!;
        for (const k of ownedKeys(svc)) {
          const owner = owners.get(k);
          if (owner !== undefined) throw new InvalidLbTableError(`services ${owner} and ${svc.id} share ${k}`);
          owners.set(k, svc.id);
        }
        if ((i & 1023) === 1023) yield;
      }
      applyOwners = () => {
        this.owners = owners;
      };
    } else {
      const released = new Map<string, string>();
      for (const e of [...changed.map(([b]) => b), ...removed]) if (e) for (const k of ownedKeys(e.svc)) released.set(k, e.svc.id);
      const claimed = new Map<string, string>();
      for (const [, e] of changed) {
        const id = e.svc.id;
        for (const k of ownedKeys(e.svc)) {
          const owner = claimed.get(k) ?? (released.get(k) === this.owners.get(k) ? undefined : this.owners.get(k));
          if (owner !== undefined && owner !== id) throw new InvalidLbTableError(`services ${owner} and ${id} share ${k}`);
          claimed.set(k, id);
        }
      }
      applyOwners = () => {
        for (const [k, id] of released) if (this.owners.get(k) === id) this.owners.delete(k);
        for (const [k, id] of claimed) this.owners.set(k, id);
      };
    }

    // Shared selection chains: reference counts, and the rules of chains that appear or go.
    const refs = full ? new Map<string, number>() : new Map(this.sharedRefs);
    const sharedRules = new Map<string, readonly string[]>();
    const bump = (e: CachedService, by: number) => {
      if (!e.shared) return;
      const [name, rules] = e.shared;
      refs.set(name, (refs.get(name) ?? 0) + by);
      sharedRules.set(name, rules);
    };
    const entriesAfter = (): Iterable<CachedService> => allEntries(prev, changed, removed);
    const gone = [...changed.flatMap(([b]) => (b ? [b] : [])), ...removed];
    let digest: TableDigest;
    /** A full plan's entries by id, built while summing the digest. */
    const fullById = new Map<string, CachedService>();
    if (full) {
      digest = layoutTerm();
      for (const e of entriesAfter()) {
        bump(e, 1);
        digest = combine(digest, e.term);
        fullById.set(e.svc.id, e);
        if ((fullById.size & 1023) === 0) yield;
      }
    } else {
      digest = this.digest;
      for (const e of gone) {
        bump(e, -1);
        digest = combine(digest, e.term, -1);
      }
      for (const [, e] of changed) {
        bump(e, 1);
        digest = combine(digest, e.term);
      }
    }
    for (const [name, n] of refs) if (n <= 0) refs.delete(name);

    let plan: NftPlan | null = null;
    const planNow = function* (): Steps<NftPlan> {
      if (full) {
        const model = emptyModel();
        let n = 0;
        for (const e of entriesAfter()) {
          addFragment(model, fragment(e));
          if ((++n & 127) === 0) yield;
        }
        setDigestElement(model, digest, list.length);
        return yield* planFullSteps(model);
      }
      // Only the touched services' objects, shared chains that appear or disappear, and the digest.
      const before = emptyModel();
      const after = emptyModel();
      for (const e of gone) addFragment(before, { ...fragment(e), shared: [] });
      for (const [, e] of changed) addFragment(after, { ...fragment(e), shared: [] });
      for (const [name, rules] of sharedRules) {
        const had = cache.sharedRefs.has(name);
        const has = refs.has(name);
        if (had && !has) before.chains.set(name, rules);
        if (!had && has) after.chains.set(name, rules);
      }
      if (changed.length > 0 || removed.length > 0) {
        setDigestElement(before, cache.digest, cache.byId!.size);
        setDigestElement(after, digest, list.length);
      }
      return planIncremental(before, after);
    };
    // Incremental plans are small: compute them now, so a bad table fails in plan(), not later.
    if (!full) plan = runSync(planNow());
    return {
      get plan() {
        return (plan ??= runSync(planNow()));
      },
      prepare: async () => {
        plan ??= await runSliced(planNow());
      },
      changes,
      digest,
      commit: () => {
        applyOwners();
        const byId = full || !prev ? fullById : prev;
        if (!full) {
          for (const e of removed) byId.delete(e.svc.id);
          for (const [, e] of changed) byId.set(e.svc.id, e);
        }
        for (const [e, svc] of refreshed) e.svc = svc;
        // Patch the order in place when the length holds; else copy it whole (a packed array, never a holey one).
        if (this.order.length === list.length) for (const [i, e] of placed) this.order[i] = e.svc;
        else this.order = list.slice();
        for (const [i, e] of placed) e.index = i;
        this.byId = byId;
        this.sharedRefs = refs;
        this.digest = digest;
      },
    };
  }

  /** The full model of what the cache holds, digest included (for tests). */
  model(): NftModel {
    const model = emptyModel();
    for (const e of this.byId?.values() ?? []) addFragment(model, fragment(e));
    setDigestElement(model, this.digest, this.byId?.size ?? 0);
    return model;
  }

  /** Forgets everything: the next plan is a full rebuild. */
  invalidate(): void {
    this.byId = null;
    this.order = [];
    this.sharedRefs = new Map();
    this.owners = new Map();
    this.digest = layoutTerm();
  }
}

/**
 * The indexes where `list` does not hold the very object `order` holds: the only services a plan
 * looks at. A small loop of its own, so the JIT compiles it to pointer comparisons.
 */
function identityMisses(list: readonly VirtualService[], order: readonly VirtualService[]): number[] {
  const misses: number[] = [];
  const common = Math.min(list.length, order.length);
  for (let i = 0; i < common; i++) if (list[i] !== order[i]) misses.push(i);
  for (let i = common; i < list.length; i++) misses.push(i);
  return misses;
}

/** The entries of the table after a plan: the previous ones minus removed and replaced, plus changed. */
function* allEntries(prev: Map<string, CachedService> | null, changed: Array<[CachedService | undefined, CachedService]>, removed: CachedService[]): Iterable<CachedService> {
  const replaced = new Set<CachedService>(removed);
  for (const [b] of changed) if (b) replaced.add(b);
  if (prev) for (const e of prev.values()) if (!replaced.has(e)) yield e;
  for (const [, e] of changed) yield e;
}

/** A validated service's cache entry, not rendered yet. */
function entryOf(svc: VirtualService, key: string | null): CachedService {
  const k = key ?? definitionKey(svc)!;
  return { svc, key: k, frag: null, shared: sharedChainOf(svc), term: digestTerm(k), index: -1 };
}

/** The entry's fragment, rendered on first use (the service was validated before it entered). */
function fragment(e: CachedService): ServiceFragment {
  return (e.frag ??= renderService(e.svc));
}

function duplicateId(id: unknown): InvalidLbTableError {
  return new InvalidLbTableError(`service id ${String(id)} is used twice`);
}

/** The keys a service may not share with another: its frontend and its fwmark. */
function ownedKeys(svc: VirtualService): string[] {
  const keys = [`frontend ${frontendKey(svc)}`];
  if (svc.frontend.kind === 'fwmark') keys.push(`fwmark ${svc.frontend.mark}`);
  return keys;
}
