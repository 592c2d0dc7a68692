import { describe, expect, it } from 'vitest';
import { RouteTable } from './api-router.js';
import { parseLogQuery } from './task-log-routes.js';

describe('RouteTable', () => {
  const t = new RouteTable<string>();
  t.add('GET', '/v1/tasks/:id/logs', 'logs');
  t.add('GET', '/v1/kernel-view', 'kernel');

  it('matches fixed and :name segments, decoding them', () => {
    expect(t.match('GET', '/v1/tasks/abc%2Ed/logs')).toEqual({ value: 'logs', params: { id: 'abc.d' } });
    expect(t.match('GET', '/v1/kernel-view')).toEqual({ value: 'kernel', params: {} });
  });

  it('tells an unknown path from a method the path does not take', () => {
    expect(t.match('GET', '/v1/tasks//logs')).toBeUndefined();
    expect(t.match('GET', '/v1/tasks/a/logs/more')).toBeUndefined();
    expect(t.match('POST', '/v1/kernel-view')).toBe('methodNotAllowed');
  });

  it('refuses a second route of the same shape', () => {
    expect(() => t.add('GET', '/v1/tasks/:task/logs', 'x')).toThrow(/already taken/);
    expect(() => t.add('GET', 'v1/x', 'x')).toThrow(/must start with \//);
  });
});

describe('parseLogQuery', () => {
  it('reads tail and follow, and refuses anything else with what to give', () => {
    expect(parseLogQuery(new URLSearchParams(''))).toEqual({ follow: false });
    expect(parseLogQuery(new URLSearchParams('tail=2&follow=1'))).toEqual({ tail: 2, follow: true });
    expect(parseLogQuery(new URLSearchParams('tail=all&follow=false'))).toEqual({ follow: false });
    expect(() => parseLogQuery(new URLSearchParams('tail=-1'))).toThrow(/from 0 to/);
    expect(() => parseLogQuery(new URLSearchParams('follow=yes'))).toThrow(/give 1 or 0/);
  });
});
