import type { LbTable } from '../lb-table.js';
import { emptyModel, type NftModel } from './model.js';
import { planFull, planIncremental, type NftPlan } from './plan.js';
import { renderModel } from './render.js';

/**
 * What meshnet last applied to one namespace's kernel: the rendered objects (to diff against)
 * and the table they came from (for conntrack cleanup). Only commit() after nft succeeded, so
 * a failed transaction leaves the cache describing what the kernel still holds.
 */
export class ElementCache {
  private model: NftModel | null = null;
  private table: LbTable | null = null;

  /** True once something was applied or adopted. */
  get known(): boolean {
    return this.model !== null;
  }

  /** The table last applied or adopted (null before the first sync). */
  get lastTable(): LbTable | null {
    return this.table;
  }

  /** The plan that takes the kernel to `next`: incremental when the cache knows the kernel, else full. */
  plan(next: LbTable, opts: { full?: boolean } = {}): { plan: NftPlan; model: NftModel } {
    const model = renderModel(next);
    if (opts.full || !this.model) return { plan: planFull(model), model };
    return { plan: planIncremental(this.model, model), model };
  }

  /** Records that `model` (rendered from `table`) is now in the kernel. */
  commit(table: LbTable, model: NftModel): void {
    this.table = table;
    this.model = model;
  }

  /** Forgets everything: the next plan is a full rebuild. */
  invalidate(): void {
    this.model = null;
    this.table = null;
  }

  /** Starts from what the kernel was read to hold (adoption after a restart). */
  adopt(table: LbTable): void {
    this.commit(table, table.services.length ? renderModel(table) : emptyModel());
  }
}
