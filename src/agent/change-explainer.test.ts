import { describe, expect, it } from 'vitest';
import { explainChange } from './change-explainer.js';

describe('explainChange', () => {
  it('says which ids of a list came, went or changed', () => {
    const before = { services: [{ id: 'a', w: 1 }, { id: 'b', w: 1 }, { id: 'c', w: 1 }] };
    const after = { services: [{ id: 'a', w: 1 }, { id: 'b', w: 0 }, { id: 'd', w: 1 }] };
    expect(explainChange(before, after)).toBe('services: added d; removed c; changed b');
  });
  it('names differing fields of an object, and old -> new for plain values', () => {
    expect(explainChange({ x: 1, y: [1], z: 'same' }, { x: 2, y: [1, 2], z: 'same' })).toBe('fields x, y');
    expect(explainChange('0', '1')).toBe('"0" -> "1"');
  });
  it('cuts long lists of names', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i}` }));
    expect(explainChange(ids(0), ids(6))).toBe('added s0, s1, s2, s3 and 2 more');
  });
});
