import { describe, expect, test } from 'vitest';
import { placeGlobal, placeReplicas } from './placement.js';

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


describe('placeReplicas with a per-node cap', () => {
  test('never more than the cap on a node; what does not fit stays unplaced, the highest slots first', () => {
    for (const [replicas, nodes, cap] of [[4, 3, 1], [7, 3, 2], [5, 2, 2], [10, 4, 1], [3, 3, 5]] as const) {
      const ids = Array.from({ length: nodes }, (_, i) => `n${i}`);
      const p = placeReplicas('web', replicas, ids, new Map(), new Map(), cap);
      expect(p.size).toBe(Math.min(replicas, nodes * cap));
      for (const c of counts(p).values()) expect(c).toBeLessThanOrEqual(cap);
      expect([...p.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: p.size }, (_, i) => i + 1));
    }
  });

  test('a running slot keeps its node even when a lower slot has to wait', () => {
    const p = placeReplicas('web', 4, ['a', 'b'], new Map([[4, 'a']]), new Map(), 1);
    expect(p.get(4)).toBe('a');
    expect(p.size).toBe(2);
    expect([...p.values()].sort()).toEqual(['a', 'b']);
  });

  test('a joining node takes a pending slot and nothing else moves', () => {
    const before = placeReplicas('web', 4, ['a', 'b', 'c'], new Map(), new Map(), 1);
    expect(before.size).toBe(3);
    const after = placeReplicas('web', 4, ['a', 'b', 'c', 'd'], before, new Map(), 1);
    expect(after.size).toBe(4);
    expect(moved(before, after)).toBe(1);
    expect(after.get(4)).toBe('d');
  });

  test('cap 0 is unlimited: the same placement as without one', () => {
    expect([...placeReplicas('api', 9, ['a', 'b'], new Map(), new Map(), 0)]).toEqual([...placeReplicas('api', 9, ['a', 'b'])]);
  });
});

describe('placeGlobal', () => {
  test('one slot per node, the lowest slots, in node order, whatever order the nodes come in', () => {
    const p = placeGlobal(['c', 'a', 'b', 'a']);
    expect([...p].sort((x, y) => x[0] - y[0])).toEqual([[1, 'a'], [2, 'b'], [3, 'c']]);
    expect([...placeGlobal(['b', 'c', 'a'])]).toEqual([...p]);
    expect(placeGlobal([]).size).toBe(0);
  });

  test('a node keeps its slot; a joining node takes the lowest free one', () => {
    const current = new Map([[1, 'b'], [3, 'c']]);
    const p = placeGlobal(['a', 'b', 'c'], current);
    expect(p.get(1)).toBe('b');
    expect(p.get(3)).toBe('c');
    expect(p.get(2)).toBe('a');
    const joined = placeGlobal(['a', 'b', 'c', 'd'], p);
    expect([...joined].filter(([slot, node]) => p.get(slot) !== node)).toEqual([[4, 'd']]);
  });

  test('a node that leaves frees its slot, and nobody else moves', () => {
    const p = placeGlobal(['a', 'b', 'c']);
    const after = placeGlobal(['a', 'c'], p);
    expect([...after].sort((x, y) => x[0] - y[0])).toEqual([[1, 'a'], [3, 'c']]);
    // It comes back to the slot it had, the lowest free one.
    expect(placeGlobal(['a', 'b', 'c'], after).get(2)).toBe('b');
  });

  test('a node running two slots keeps the lowest; the other is left for whoever lacks one', () => {
    const p = placeGlobal(['a', 'b'], new Map([[1, 'a'], [2, 'a']]));
    expect(p.get(1)).toBe('a');
    expect(p.get(2)).toBe('b');
  });

  test('a pinned (paused) node keeps its slot without being eligible, and nodes that are not eligible lose theirs', () => {
    const p = placeGlobal(['a'], new Map([[1, 'x'], [2, 'a'], [3, 'p']]), new Map([[3, 'p']]));
    expect([...p].sort((x, y) => x[0] - y[0])).toEqual([[2, 'a'], [3, 'p']]);
  });
});
