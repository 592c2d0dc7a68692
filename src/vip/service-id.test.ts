import { describe, expect, it } from 'vitest';
import { lbServiceId } from './service-id.js';

describe('lbServiceId', () => {
  it('is stable, readable, at most 48 characters of [a-z0-9_-], and tells services apart by id', () => {
    const id = lbServiceId('svc-web-1', 'Web Frontend', 'front', 'tcp', 80);
    expect(id).toBe(lbServiceId('svc-web-1', 'Web Frontend', 'front', 'tcp', 80));
    expect(id).toMatch(/^web-frontend-[0-9a-f]{10}-tcp80$/);
    expect(lbServiceId('x'.repeat(100), 'N'.repeat(200), 'net', 'udp', 65535)).toMatch(/^[a-z0-9_-]{1,48}$/);
    expect(lbServiceId('a', 'web', 'n', 'tcp', 80)).not.toBe(lbServiceId('b', 'web', 'n', 'tcp', 80));
    expect(lbServiceId('a', 'web', 'n1', 'tcp', 80)).not.toBe(lbServiceId('a', 'web', 'n2', 'tcp', 80));
  });
});
