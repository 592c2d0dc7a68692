import { describe, expect, test } from 'vitest';
import { placeReplicas } from './placement.js';

function counts(placement: Map<number, string>): Map<string, number> {
  const c = new Map<string, number>();
  for (const node of placement.values()) c.set(node, (c.get(node) ?? 0) + 1);
  return c;
}

function moved(before: Map<number, string>, after: Map<number, string>): number {
  return [...after].filter(([slot, node]) => before.get(slot) !== node).length;
}

describe('placeReplicas', () => {
  test('3 replicas over 3 nodes land one per node, for many service names', () => {
    for (let i = 0; i < 200; i++) {
      const p = placeReplicas(`svc-${i}`, 3, ['a', 'b', 'c']);
      expect([...p.keys()].sort()).toEqual([1, 2, 3]);
      expect(new Set(p.values()).size).toBe(3);
    }
  });

  test('every slot exactly once and counts differ by at most one', () => {
    for (const replicas of [0, 1, 2, 5, 7, 10, 31]) {
      for (const n of [1, 2, 3, 4, 6]) {
        const nodes = Array.from({ length: n }, (_, i) => `node-${i}`);
        const p = placeReplicas('web', replicas, nodes);
        expect([...p.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: replicas }, (_, i) => i + 1));
        const c = [...counts(p).values()];
        if (replicas > 0) expect(Math.max(...c) - Math.min(...(c.length < n ? [0] : c))).toBeLessThanOrEqual(1);
        for (const node of p.values()) expect(nodes).toContain(node);
      }
    }
  });

  test('deterministic and independent of node order or duplicates', () => {
    const a = placeReplicas('api', 7, ['n1', 'n2', 'n3']);
    const b = placeReplicas('api', 7, ['n3', 'n1', 'n2', 'n1']);
    expect([...b]).toEqual([...a]);
  });

  test('no live nodes: nothing placed', () => {
    expect(placeReplicas('api', 3, []).size).toBe(0);
  });

  test('a dying node moves only its own slots', () => {
    for (let i = 0; i < 50; i++) {
      const nodes = ['a', 'b', 'c', 'd'];
      const before = placeReplicas(`s${i}`, 10, nodes);
      const dead = nodes[i % 4]!;
      const live = nodes.filter((n) => n !== dead);
      const after = placeReplicas(`s${i}`, 10, live, before);
      const onDead = [...before.values()].filter((n) => n === dead).length;
      expect(moved(before, after)).toBe(onDead);
      expect([...after.values()]).not.toContain(dead);
      const c = [...counts(after).values()];
      expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
    }
  });

  test('without history, rendezvous hashing still keeps most slots when a node dies', () => {
    let total = 0;
    let movedTotal = 0;
    for (let i = 0; i < 50; i++) {
      const before = placeReplicas(`s${i}`, 12, ['a', 'b', 'c', 'd']);
      const after = placeReplicas(`s${i}`, 12, ['a', 'b', 'c']);
      total += 12;
      movedTotal += moved(before, after);
    }
    // Only the dead node's quarter has to move; the balancing step may move a little more.
    expect(movedTotal / total).toBeLessThan(0.4);
  });

  test('a joining node takes only its share', () => {
    const before = placeReplicas('web', 9, ['a', 'b', 'c']);
    const after = placeReplicas('web', 9, ['a', 'b', 'c', 'd'], before);
    expect(moved(before, after)).toBe(2);
    expect([...counts(after).values()].sort()).toEqual([2, 2, 2, 3]);
  });

  test('scaling down drops the high slots and keeps the rest', () => {
    const before = placeReplicas('web', 6, ['a', 'b', 'c']);
    const after = placeReplicas('web', 3, ['a', 'b', 'c'], before);
    expect([...after.keys()].sort()).toEqual([1, 2, 3]);
    expect(new Set(after.values()).size).toBe(3);
  });

  test('pinned slots stay on their node and the rest spread over the others', () => {
    const before = placeReplicas('web', 6, ['a', 'b', 'c']);
    const onB = [...before].filter(([, n]) => n === 'b');
    const after = placeReplicas('web', 6, ['a', 'c'], before, new Map(onB));
    for (const [slot] of onB) expect(after.get(slot)).toBe('b');
    expect([...after.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(counts(after).get('a')).toBe(2);
    expect(counts(after).get('c')).toBe(2);
    // Pinned slots beyond the replica count are not kept.
    expect([...placeReplicas('web', 1, ['a'], new Map(), new Map([[1, 'b'], [2, 'b']]))]).toEqual([[1, 'b']]);
  });
});

