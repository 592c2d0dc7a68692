import { describe, expect, it } from 'vitest';
import type { LbTable, VirtualService } from '../lb-table.js';
import { digestKey } from './digest.js';
import { ElementCache } from './element-cache.js';
import { renderFullScript, renderModel } from './render.js';
import { SAMPLE_TABLE } from './sample-table.fixture.js';

function service(s: number, backends: number, variant = 0): VirtualService {
  return {
    id: `s${s}`,
    frontend: { kind: 'vip', address: `10.96.${s >> 8}.${s & 255}`, protocol: s % 5 === 0 ? 'udp' : 'tcp', port: 80 },
    scheduler: s % 3 === 0 ? 'wrr' : 'rr',
    ...(s % 7 === 0 ? { persistenceSeconds: 60 } : {}),
    backends: Array.from({ length: backends }, (_, b) => ({ address: `10.128.${s & 255}.${b + variant}`, port: 8080, weight: 1 + ((b + variant) % 3) })),
  };
}

/** What the cache must describe after committing `t`: exactly what rendering `t` from scratch gives. */
function expectDescribes(cache: ElementCache, t: LbTable): void {
  expect(renderFullScript(cache.model())).toBe(renderFullScript(renderModel(t)));
}

/** The digest element's key in the model rendered from scratch. */
function renderedDigest(t: LbTable): string {
  return [...renderModel(t).maps.get('table-digest')!.keys()][0]!;
}

/** A small deterministic PRNG, so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

describe('ElementCache', () => {
  it('after any sequence of adds, removals, changes, moves and fresh copies, describes the table and its digest', () => {
    const rnd = prng(7);
    const cache = new ElementCache();
    let t: LbTable = { services: Array.from({ length: 30 }, (_, s) => service(s, 3)) };
    cache.plan(t).commit();
    let nextId = 30;
    for (let step = 0; step < 200; step++) {
      const services = t.services.slice(); // structural sharing: untouched services stay the same objects
      const r = rnd();
      const i = Math.floor(rnd() * services.length);
      if (r < 0.3) services[i] = service(Number(services[i]!.id.slice(1)), 1 + Math.floor(rnd() * 4), step);
      else if (r < 0.45) services.splice(i, 1);
      else if (r < 0.6) services.splice(i, 0, service(nextId++, 2));
      else if (r < 0.7) services.reverse();
      else if (r < 0.8) services[i] = structuredClone(services[i]!); // a fresh object, same definition
      else if (r < 0.9) services[i] = { ...services[i]!, backends: services[i]!.backends.map((b) => ({ ...b, weight: 0 })) };
      else {
        const [a] = services.splice(i, 1); // move one service to the end
        services.push(a!);
      }
      const next = { services };
      const pending = cache.plan(next);
      expect(pending.plan.mode).toBe('incremental');
      expect(digestKey(pending.digest)).toBe(renderedDigest(next));
      pending.commit();
      expectDescribes(cache, next);
      t = next;
    }
    // A deep copy of everything (no shared object) is recognised as the same table.
    expect(cache.plan(structuredClone(t)).plan.script).toBe('');
  });

  it('lists exactly the services that changed, and writes nothing for a copy or a reorder', () => {
    const cache = new ElementCache();
    const t: LbTable = { services: Array.from({ length: 50 }, (_, s) => service(s, 4)) };
    cache.plan(t).commit();
    const services = t.services.slice();
    services[10] = service(10, 2);
    services.splice(20, 1);
    services.push(service(99, 1));
    const pending = cache.plan({ services });
    expect(pending.changes.map((c) => [c.before?.id ?? null, c.after?.id ?? null]).sort()).toEqual([
      [null, 's99'],
      ['s10', 's10'],
      ['s20', null],
    ]);
    pending.commit();
    expect(cache.plan({ services: [...services].reverse() }).plan.script).toBe('');
    expect(cache.plan({ services: services.map((s) => ({ ...s })) }).changes).toEqual([]);
  });

  it('has one digest per table whatever the order, and a different one for any change', () => {
    const a = renderedDigest(SAMPLE_TABLE);
    expect(renderedDigest({ services: [...SAMPLE_TABLE.services].reverse() })).toBe(a);
    const drained = structuredClone(SAMPLE_TABLE);
    drained.services[0]!.backends[0]!.weight = 0;
    expect(renderedDigest(drained)).not.toBe(a);
    expect(renderedDigest({ services: SAMPLE_TABLE.services.slice(1) })).not.toBe(a);
  });

  it('refuses a duplicate id whether the other copy is unchanged, changed or new', () => {
    const cache = new ElementCache();
    const t: LbTable = { services: [service(1, 2), service(2, 2)] };
    cache.plan(t).commit();
    expect(() => cache.plan({ services: [t.services[0]!, t.services[1]!, { ...service(3, 1), id: 's1' }] })).toThrow(/used twice/);
    expect(() => cache.plan({ services: [{ ...service(3, 1), id: 's2' }, t.services[0]!, t.services[1]!] })).toThrow(/used twice/);
    expect(() => cache.plan({ services: [...t.services, service(5, 1), service(5, 2)] })).toThrow(/used twice/);
    // A refused plan leaves the cache as it was.
    const next = { services: [t.services[0]!, service(2, 3)] };
    cache.plan(next).commit();
    expectDescribes(cache, next);
  });

  it('a full plan with a known previous table still reports what changed (for conntrack cleanup)', () => {
    const cache = new ElementCache();
    const t: LbTable = { services: [service(5, 3)] };
    cache.plan(t).commit();
    const next = { services: [service(5, 1)] };
    const pending = cache.plan(next, { full: true });
    expect(pending.plan.mode).toBe('full');
    expect(pending.changes).toEqual([{ before: t.services[0], after: next.services[0] }]);
    expect(pending.plan.script).toBe(renderFullScript(renderModel(next)));
  });
});
