/** A kernel surface the reconciler applies to; each target of one is keyed by its name within the surface. */
export type Surface = 'namespace' | 'sysctl' | 'gwleg' | 'overlay' | 'encryption' | 'lb' | 'taskrules' | 'hostrules' | 'health' | 'process' | 'dns' | 'dnsnat';

/** What the reconciler knows of one target: what it last applied, or why it could not. */
export interface TargetStatus {
  surface: Surface;
  target: string;
  /** ISO time of the last successful apply. */
  appliedAt?: string;
  error?: string;
  /** ISO time the current error started. */
  failingSince?: string;
}

interface Applied {
  value: unknown;
  /** JSON of `value`, computed once, for values that are not shared by identity. */
  json: string | null;
  appliedAt: string;
}

/**
 * What each adapter last applied, target by target: a pass compares the plan's slice for a target with
 * this record and touches the kernel only where they differ. Values are compared by identity first
 * (planners share unchanged objects), then by their JSON. A failed target has no record, so the next
 * pass tries it again; the periodic resync clears the cache so everything is checked against the kernel.
 */
export class AppliedCache {
  /**
   * surface -> target -> record. Nested rather than keyed by a joined string: a no-op pass asks holds()
   * of every target, and a key built per question was a string allocated and hashed each time.
   */
  private readonly applied = new Map<Surface, Map<string, Applied>>();
  /**
   * JSON of plan objects already serialised: one plan object is often the value of many targets (the
   * name view of every task on the same networks, one table shared by their namespaces), and a pass
   * that stringified it once per target spent most of its time there. Weak: it goes with the plan.
   */
  private jsonOf = new WeakMap<object, string>();
  private readonly errors = new Map<Surface, Map<string, { error: string; since: string }>>();
  private errorCount = 0;

  private static of<V>(maps: Map<Surface, Map<string, V>>, surface: Surface): Map<string, V> {
    let m = maps.get(surface);
    if (!m) maps.set(surface, (m = new Map()));
    return m;
  }

  /** True when `target` already holds `value`. */
  holds(surface: Surface, target: string, value: unknown): boolean {
    const had = this.applied.get(surface)?.get(target);
    if (!had) return false;
    if (had.value === value) return true;
    if (had.json === null) return false;
    return had.json === this.json(value);
  }

  private json(value: unknown): string {
    if (typeof value !== 'object' || value === null) return JSON.stringify(value);
    let s = this.jsonOf.get(value);
    if (s === undefined) this.jsonOf.set(value, (s = JSON.stringify(value)));
    return s;
  }

  /** Records that `target` now holds `value`; `byIdentity` skips the JSON copy (large shared objects). */
  record(surface: Surface, target: string, value: unknown, opts: { byIdentity?: boolean } = {}): void {
    AppliedCache.of(this.applied, surface).set(target, { value, json: opts.byIdentity ? null : this.json(value), appliedAt: new Date().toISOString() });
    this.clearError(surface, target);
  }

  private clearError(surface: Surface, target: string): void {
    if (this.errors.get(surface)?.delete(target)) this.errorCount--;
  }

  /** Records a failure: the target is tried again on the next pass. */
  fail(surface: Surface, target: string, error: string): { first: boolean } {
    this.applied.get(surface)?.delete(target);
    const errors = AppliedCache.of(this.errors, surface);
    const had = errors.get(target);
    if (had && had.error === error) return { first: false };
    if (!had) this.errorCount++;
    errors.set(target, { error, since: had?.since ?? new Date().toISOString() });
    return { first: true };
  }

  /** Whether `target` is failing now. */
  failing(surface: Surface, target: string): boolean {
    return this.errors.get(surface)?.has(target) ?? false;
  }

  /** The value last applied to `target`. */
  get<T>(surface: Surface, target: string): T | undefined {
    return this.applied.get(surface)?.get(target)?.value as T | undefined;
  }

  /** Targets of `surface` that hold something (or are failing). */
  targets(surface: Surface): string[] {
    const applied = this.applied.get(surface);
    const errors = this.errors.get(surface);
    if (!errors || errors.size === 0) return applied ? [...applied.keys()] : [];
    return [...new Set([...(applied?.keys() ?? []), ...errors.keys()])];
  }

  /** Forgets a target (it was removed). */
  forget(surface: Surface, target: string): void {
    this.applied.get(surface)?.delete(target);
    this.clearError(surface, target);
  }

  /**
   * Forgets what was applied (not the errors), so the next pass checks those targets against the kernel:
   * every target, or those `which` selects.
   */
  invalidate(which?: (surface: Surface, target: string) => boolean): void {
    if (!which) return this.applied.clear();
    for (const [surface, targets] of this.applied) {
      for (const target of [...targets.keys()]) if (which(surface, target)) targets.delete(target);
    }
  }

  /** How many targets are failing now (each pass asks; status() builds every target's record). */
  failingCount(): number {
    return this.errorCount;
  }

  /** Every target's status, for inspect, explain and metrics. */
  status(): TargetStatus[] {
    const out = new Map<string, TargetStatus>();
    for (const [surface, targets] of this.applied) {
      for (const [target, a] of targets) out.set(`${surface}\0${target}`, { surface, target, appliedAt: a.appliedAt });
    }
    for (const [surface, targets] of this.errors) {
      for (const [target, e] of targets) {
        const k = `${surface}\0${target}`;
        out.set(k, { ...out.get(k), surface, target, error: e.error, failingSince: e.since });
      }
    }
    return [...out.values()];
  }
}
