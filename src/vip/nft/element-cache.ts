import type { LbTable, VirtualService } from '../lb-table.js';
import { InvalidLbTableError } from './errors.js';
import { emptyModel, type NftModel } from './model.js';
import { planFull, planIncremental, type NftPlan } from './plan.js';
import { addFragment, renderService, type ServiceFragment } from './render.js';
import { frontendKey, validateService, validateUniqueness } from './validate-table.js';

interface CachedService {
  svc: VirtualService;
  json: string;
  frag: ServiceFragment;
}

/** A computed transaction and how to record it once the kernel accepted it. */
export interface PendingSync {
  plan: NftPlan;
  /** Call only after nft succeeded: the cache then describes the kernel. */
  commit(): void;
}

/**
 * What meshnet last applied to one namespace's kernel, per service: the rendered fragment and
 * the service it came from. A sync re-renders only services whose definition changed (same
 * object, or same JSON, means unchanged), so computing a one-backend change costs the same at
 * 10 or 10,000 services, like the transaction it produces.
 */
export class ElementCache {
  private services: Map<string, CachedService> | null = null;
  /** Shared selection chain -> how many services use it. */
  private sharedRefs = new Map<string, number>();
  private table: LbTable | null = null;
  /** frontend key / fwmark -> service id, so a sync checks uniqueness for changed services only. */
  private owners = new Map<string, string>();

  /** True once something was applied or adopted. */
  get known(): boolean {
    return this.services !== null;
  }

  /** The table last applied or adopted (null before the first sync). */
  get lastTable(): LbTable | null {
    return this.table;
  }

  /** The transaction that takes the kernel to `next`: incremental when the cache knows the kernel, else full. */
  plan(next: LbTable, opts: { full?: boolean } = {}): PendingSync {
    if (!next || !Array.isArray(next.services)) throw new InvalidLbTableError('services must be a list');
    const prev = this.services;
    const entries = new Map<string, CachedService>();
    const changed: string[] = [];
    for (const svc of next.services) {
      if (entries.has(svc.id)) throw new InvalidLbTableError(`service id ${String(svc.id)} is used twice`);
      const old = prev?.get(svc.id);
      if (old && old.svc === svc) {
        entries.set(svc.id, old);
        continue;
      }
      const json = JSON.stringify(svc);
      if (old && old.json === json) {
        entries.set(svc.id, { ...old, svc });
        continue;
      }
      validateService(svc);
      entries.set(svc.id, { svc, json, frag: renderService(svc) });
      changed.push(svc.id);
    }
    // Scan for removed services only when some are (the common sync changes a few and removes none).
    const added = prev ? changed.filter((id) => !prev.has(id)).length : 0;
    const removed = prev && prev.size !== entries.size - added ? [...prev.keys()].filter((id) => !entries.has(id)) : [];
    // Uniqueness: a full sync checks every service; an incremental one only the keys that move.
    let applyOwners: () => void;
    if (!prev || opts.full) {
      validateUniqueness(next.services);
      applyOwners = () => {
        this.owners = new Map();
        for (const svc of next.services) for (const k of ownedKeys(svc)) this.owners.set(k, svc.id);
      };
    } else {
      const released = new Map<string, string>();
      for (const id of [...changed, ...removed]) {
        const old = prev.get(id);
        if (old) for (const k of ownedKeys(old.svc)) released.set(k, id);
      }
      const claimed = new Map<string, string>();
      for (const id of changed) {
        for (const k of ownedKeys(entries.get(id)!.svc)) {
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

    const refs = new Map(this.sharedRefs);
    const bump = (frag: ServiceFragment, by: number) => {
      for (const [name] of frag.shared) refs.set(name, (refs.get(name) ?? 0) + by);
    };
    if (!prev || opts.full) {
      refs.clear();
      for (const e of entries.values()) bump(e.frag, 1);
    } else {
      for (const id of [...changed, ...removed]) if (prev.has(id)) bump(prev.get(id)!.frag, -1);
      for (const id of changed) bump(entries.get(id)!.frag, 1);
    }
    for (const [name, n] of refs) if (n <= 0) refs.delete(name);

    let plan: NftPlan;
    if (!prev || opts.full) {
      const model = emptyModel();
      for (const e of entries.values()) addFragment(model, e.frag);
      plan = planFull(model);
    } else {
      // Only the touched services' objects, plus shared chains that appear or disappear.
      const before = emptyModel();
      const after = emptyModel();
      for (const id of [...changed, ...removed]) {
        const old = prev.get(id);
        if (old) addFragment(before, { ...old.frag, shared: [] });
      }
      for (const id of changed) addFragment(after, { ...entries.get(id)!.frag, shared: [] });
      const sharedRules = new Map<string, readonly string[]>();
      for (const id of [...changed, ...removed]) for (const [n, r] of (prev.get(id) ?? entries.get(id))!.frag.shared) sharedRules.set(n, r);
      for (const id of changed) for (const [n, r] of entries.get(id)!.frag.shared) sharedRules.set(n, r);
      for (const [name, rules] of sharedRules) {
        const had = this.sharedRefs.has(name);
        const has = refs.has(name);
        if (had && !has) before.chains.set(name, rules);
        if (!had && has) after.chains.set(name, rules);
      }
      plan = planIncremental(before, after);
    }
    return {
      plan,
      commit: () => {
        applyOwners();
        this.services = entries;
        this.sharedRefs = refs;
        this.table = next;
      },
    };
  }

  /** The full model of what the cache holds (for tests and the periodic reconcile). */
  model(): NftModel {
    const model = emptyModel();
    for (const e of this.services?.values() ?? []) addFragment(model, e.frag);
    return model;
  }

  /** Forgets everything: the next plan is a full rebuild. */
  invalidate(): void {
    this.services = null;
    this.sharedRefs = new Map();
    this.owners = new Map();
    this.table = null;
  }

  /** Starts from what the kernel was read to hold (adoption after a restart). */
  adopt(table: LbTable): void {
    this.invalidate();
    this.plan(table, { full: true }).commit();
  }
}

/** The keys a service may not share with another: its frontend and its fwmark. */
function ownedKeys(svc: VirtualService): string[] {
  const keys = [`frontend ${frontendKey(svc)}`];
  if (svc.frontend.kind === 'fwmark') keys.push(`fwmark ${svc.frontend.mark}`);
  return keys;
}
