import { describe, expect, it } from 'vitest';
import { AppliedCache } from './applied-cache.js';

describe('AppliedCache', () => {
  it('holds a value by identity, or by content unless recorded by identity', () => {
    const c = new AppliedCache();
    const table = { backends: ['10.0.0.2'] };
    c.record('lb', '/run/ns/t-a', table);
    expect(c.holds('lb', '/run/ns/t-a', table)).toBe(true);
    expect(c.holds('lb', '/run/ns/t-a', { backends: ['10.0.0.2'] })).toBe(true);
    expect(c.holds('lb', '/run/ns/t-a', { backends: ['10.0.0.3'] })).toBe(false);
    // The same name on another surface is another target.
    expect(c.holds('taskrules', '/run/ns/t-a', table)).toBe(false);
    c.record('dns', '/run/ns/t-a', table, { byIdentity: true });
    expect(c.holds('dns', '/run/ns/t-a', table)).toBe(true);
    expect(c.holds('dns', '/run/ns/t-a', { backends: ['10.0.0.2'] })).toBe(false);
  });

  it('counts failures once per target and clears them on success or forget', () => {
    const c = new AppliedCache();
    c.record('gwleg', 'mg0', 1);
    expect(c.fail('gwleg', 'mg0', 'EBUSY')).toEqual({ first: true });
    expect(c.fail('gwleg', 'mg0', 'EBUSY')).toEqual({ first: false });
    expect(c.fail('gwleg', 'mg0', 'ENODEV')).toEqual({ first: true });
    expect(c.fail('gwleg', 'mg1', 'EBUSY')).toEqual({ first: true });
    expect(c.failingCount()).toBe(2);
    // A failed target holds nothing, so the next pass tries it again.
    expect(c.holds('gwleg', 'mg0', 1)).toBe(false);
    expect(c.failing('gwleg', 'mg0')).toBe(true);
    c.record('gwleg', 'mg0', 1);
    c.forget('gwleg', 'mg1');
    expect(c.failingCount()).toBe(0);
    expect(c.status()).toEqual([{ surface: 'gwleg', target: 'mg0', appliedAt: expect.any(String) }]);
  });

  it('lists a surface\'s targets, applied or failing, and invalidates only what is asked', () => {
    const c = new AppliedCache();
    c.record('namespace', 't-a', true);
    c.record('namespace', 't-b', true);
    c.fail('namespace', 't-b', 'EEXIST');
    c.fail('namespace', 't-c', 'EEXIST');
    c.record('sysctl', 'x', '1');
    expect(c.targets('namespace').sort()).toEqual(['t-a', 't-b', 't-c']);
    expect(c.targets('overlay')).toEqual([]);
    const failing = c.status().filter((s) => s.error !== undefined).map((s) => s.target).sort();
    expect(failing).toEqual(['t-b', 't-c']);
    c.invalidate((surface) => surface === 'namespace');
    expect(c.holds('namespace', 't-a', true)).toBe(false);
    expect(c.holds('sysctl', 'x', '1')).toBe(true);
    // Invalidation keeps the errors: they are reported until the target recovers.
    expect(c.failingCount()).toBe(2);
    c.invalidate();
    expect(c.holds('sysctl', 'x', '1')).toBe(false);
  });
});
