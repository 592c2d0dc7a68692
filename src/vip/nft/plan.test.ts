import { describe, expect, it } from 'vitest';
import type { LbTable, VirtualService } from '../lb-table.js';
import { ElementCache } from './element-cache.js';
import { parseRuleset, tracePacket } from './packet-tracer.js';
import { planIncremental } from './plan.js';
import { renderFullScript, renderModel } from './render.js';
import { SAMPLE_TABLE } from './sample-table.fixture.js';

function services(n: number): LbTable {
  const out: VirtualService[] = [];
  for (let s = 0; s < n; s++) {
    out.push({
      id: `s${s}`,
      frontend: { kind: 'vip', address: `10.96.${s >> 8}.${s & 255}`, protocol: 'tcp', port: 80 },
      scheduler: 'rr',
      backends: Array.from({ length: 10 }, (_, b) => ({ address: `10.128.${s >> 4}.${((s & 15) << 4) + b}`, port: 8080, weight: 1 })),
    });
  }
  return { services: out };
}

function replaceBackend(t: LbTable, s: number, address: string): LbTable {
  const next = t.services.slice();
  const svc = next[s]!;
  next[s] = { ...svc, backends: [...svc.backends.slice(0, 3), { address, port: 8080, weight: 1 }, ...svc.backends.slice(4)] };
  return { services: next };
}

describe('incremental plan', () => {
  it('costs the same for one backend change among 10 or 1,000 services (O(changed))', () => {
    const opsAt = (n: number) => {
      const cache = new ElementCache();
      const t = services(n);
      cache.plan(t).commit();
      const next = replaceBackend(t, n - 1, '10.200.0.1');
      const pending = cache.plan(next);
      expect(pending.plan.mode).toBe('incremental');
      return pending.plan;
    };
    const small = opsAt(10);
    const big = opsAt(1000);
    expect(big.ops).toBe(small.ops);
    expect(big.ops).toBeLessThanOrEqual(22); // at most every slot of that one service, and the digest
    const lines = big.script.split('\n').filter(Boolean);
    const digest = lines.filter((l) => l.includes(' table-digest '));
    expect(digest.map((l) => l.split(' ')[0])).toEqual(['delete', 'add']); // the digest is replaced in the same transaction
    expect(lines.filter((l) => !digest.includes(l)).every((l) => l.includes('10.96.3.231'))).toBe(true); // only that service's keys
  });

  it('writes nothing when nothing changed, and exactly the drained slot when a backend drains', () => {
    const cache = new ElementCache();
    cache.plan(SAMPLE_TABLE).commit();
    expect(cache.plan(structuredClone(SAMPLE_TABLE)).plan.script).toBe('');
    const drained = structuredClone(SAMPLE_TABLE);
    drained.services[0]!.backends[0]!.weight = 0; // 10.0.1.3 drains: web keeps one slot
    const plan = cache.plan(drained).plan.script;
    expect(plan).toContain('add element ip meshnet vip-backend-weights { 10.0.0.2 . tcp . 80 . 10.0.1.3 . 8080 : 0x00000000 }');
    expect(plan).toContain('delete element ip meshnet vip-slots-tcp { 10.0.0.2 . tcp . 80 . 1 }');
    expect(plan).toContain('goto vip-tcp-inc-1');
    expect(plan).not.toContain('add chain'); // vip-tcp-inc-1 already exists (service "snat" uses it)
    expect(plan).toContain('delete chain ip meshnet vip-tcp-inc-2'); // web was its only user
  });

  it('orders deletes before the adds that could conflict and creates chains before referencing them', () => {
    const before = renderModel(SAMPLE_TABLE);
    const t = structuredClone(SAMPLE_TABLE);
    t.services[0]!.backends.push({ address: '10.0.1.7', port: 8080, weight: 1 }, { address: '10.0.1.8', port: 8080, weight: 1 });
    const lines = planIncremental(before, renderModel(t)).script.trim().split('\n');
    const addChain = lines.findIndex((l) => l.startsWith('add chain ip meshnet vip-tcp-inc-4'));
    const addRule = lines.findIndex((l) => l.startsWith('add rule ip meshnet vip-tcp-inc-4'));
    const useIt = lines.findIndex((l) => l.includes('goto vip-tcp-inc-4'));
    const delOld = lines.findIndex((l) => l.startsWith('delete element ip meshnet service-ips { 10.0.0.2 . tcp . 80 }'));
    expect(addChain).toBeGreaterThanOrEqual(0);
    expect(addChain).toBeLessThan(addRule);
    expect(addRule).toBeLessThan(useIt);
    expect(delOld).toBeLessThan(useIt);
  });

  it('applying the incremental plan to the old model gives the new model (checked through the tracer)', () => {
    const cache = new ElementCache();
    cache.plan(SAMPLE_TABLE).commit();
    const t = structuredClone(SAMPLE_TABLE);
    t.services[3]!.backends.push({ address: '10.0.2.2', port: 80, weight: 1 }); // "empty" gets a backend
    cache.plan(t).commit();
    const r = tracePacket(parseRuleset(renderFullScript(cache.model())), { src: '10.0.9.9', dst: '10.0.0.5', dport: 80, proto: 'tcp', path: 'output' });
    expect(r.verdict).toBe('accept');
    expect(r.candidates).toEqual([{ address: '10.0.2.2', port: 80, share: 1 }]);
    expect(renderFullScript(cache.model())).toBe(renderFullScript(renderModel(t)));
  });

  it('still refuses two services on one frontend when only one of them changed', () => {
    const cache = new ElementCache();
    cache.plan(SAMPLE_TABLE).commit();
    const t = structuredClone(SAMPLE_TABLE);
    t.services[1]!.frontend = { ...SAMPLE_TABLE.services[0]!.frontend };
    expect(() => cache.plan(t)).toThrow(/share/);
    const dup = { services: [...SAMPLE_TABLE.services, SAMPLE_TABLE.services[0]!] };
    expect(() => cache.plan(dup)).toThrow(/used twice/);
  });

  it('deletes a shared selection chain only when its last service leaves it', () => {
    const cache = new ElementCache();
    cache.plan(SAMPLE_TABLE).commit();
    const t = structuredClone(SAMPLE_TABLE);
    t.services = t.services.filter((s) => s.id !== 'snat'); // the only user of vip-tcp-inc-1
    const script = cache.plan(t).plan.script;
    expect(script).toContain('delete chain ip meshnet vip-tcp-inc-1');
    expect(script).toContain('delete element ip meshnet service-snat { 10.0.0.6 . tcp . 80 }');
  });
});
