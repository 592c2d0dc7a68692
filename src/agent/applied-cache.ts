/** A kernel surface the reconciler applies to; each target of one is keyed by its name within the surface. */
export type Surface = 'namespace' | 'sysctl' | 'gwleg' | 'overlay' | 'encryption' | 'lb' | 'taskrules' | 'hostrules' | 'health' | 'process' | 'dns';

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
  private readonly applied = new Map<string, Applied>();
  /**
   * JSON of plan objects already serialised: one plan object is often the value of many targets (the
   * name view of every task on the same networks, one table shared by their namespaces), and a pass
   * that stringified it once per target spent most of its time there. Weak: it goes with the plan.
   */
  private jsonOf = new WeakMap<object, string>();
  private readonly errors = new Map<string, { error: string; since: string }>();

  private static key(surface: Surface, target: string): string {
    return `${surface}\0${target}`;
  }

  /** True when `target` already holds `value`. */
  holds(surface: Surface, target: string, value: unknown): boolean {
    const had = this.applied.get(AppliedCache.key(surface, target));
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
    const k = AppliedCache.key(surface, target);
    this.applied.set(k, { value, json: opts.byIdentity ? null : this.json(value), appliedAt: new Date().toISOString() });
    this.errors.delete(k);
  }

  /** Records a failure: the target is tried again on the next pass. */
  fail(surface: Surface, target: string, error: string): { first: boolean } {
    const k = AppliedCache.key(surface, target);
    this.applied.delete(k);
    const had = this.errors.get(k);
    if (had && had.error === error) return { first: false };
    this.errors.set(k, { error, since: had?.since ?? new Date().toISOString() });
    return { first: true };
  }

  /** Whether `target` is failing now. */
  failing(surface: Surface, target: string): boolean {
    return this.errors.has(AppliedCache.key(surface, target));
  }

  /** The value last applied to `target`. */
  get<T>(surface: Surface, target: string): T | undefined {
    return this.applied.get(AppliedCache.key(surface, target))?.value as T | undefined;
  }

  /** Targets of `surface` that hold something (or are failing). */
  targets(surface: Surface): string[] {
    const prefix = `${surface}\0`;
    const out = new Set<string>();
    for (const k of this.applied.keys()) if (k.startsWith(prefix)) out.add(k.slice(prefix.length));
    for (const k of this.errors.keys()) if (k.startsWith(prefix)) out.add(k.slice(prefix.length));
    return [...out];
  }

  /** Forgets a target (it was removed). */
  forget(surface: Surface, target: string): void {
    const k = AppliedCache.key(surface, target);
    this.applied.delete(k);
    this.errors.delete(k);
  }

  /**
   * Forgets what was applied (not the errors), so the next pass checks those targets against the kernel:
   * every target, or those `which` selects.
   */
  invalidate(which?: (surface: Surface, target: string) => boolean): void {
    if (!which) return this.applied.clear();
    for (const k of [...this.applied.keys()]) {
      const [surface, target] = k.split('\0') as [Surface, string];
      if (which(surface, target)) this.applied.delete(k);
    }
  }

  /** How many targets are failing now (each pass asks; status() builds every target's record). */
  failingCount(): number {
    return this.errors.size;
  }

  /** Every target's status, for inspect, explain and metrics. */
  status(): TargetStatus[] {
    const out = new Map<string, TargetStatus>();
    for (const [k, a] of this.applied) {
      const [surface, target] = k.split('\0') as [Surface, string];
      out.set(k, { surface, target, appliedAt: a.appliedAt });
    }
    for (const [k, e] of this.errors) {
      const [surface, target] = k.split('\0') as [Surface, string];
      out.set(k, { ...out.get(k), surface, target, error: e.error, failingSince: e.since });
    }
    return [...out.values()];
  }
}
