import { describe, expect, it } from 'vitest';
import { kernelViewQuery, kernelViewRoute, parseKernelViewQuery } from './kernel-view-route.js';
import type { KernelViewRequest } from './kernel-view.js';

describe('GET /v1/kernel-view', () => {
  it('round-trips a request through its query string', () => {
    const req: KernelViewRequest = { host: true, sbox: false, overlays: ['ingress', 'appnet'], tasks: [{ id: 'task00000001' }, { id: 'task00000002', lb: true }] };
    expect(parseKernelViewQuery(kernelViewQuery(req))).toEqual(req);
  });

  it('answers 400 to a malformed query and never reads', async () => {
    let reads = 0;
    const route = kernelViewRoute({ node: 'host-a', location: { hostNetns: null, netnsDir: '/run/meshnet/netns' }, read: async () => (reads++, { node: 'host-a', readAt: '', overlays: [], tasks: [] }) });
    for (const q of ['overlays=../etc', 'tasks=UPPER', 'tasks=task00000001+rw', 'path=/etc']) {
      const r = await route(new URLSearchParams(q));
      expect(r.status, q).toBe(400);
    }
    expect(reads).toBe(0);
  });

  it('reads this node for a good query', async () => {
    const seen: KernelViewRequest[] = [];
    const route = kernelViewRoute({ node: 'host-a', location: { hostNetns: null, netnsDir: '/run/meshnet/netns' }, read: async (node, _where, request) => (seen.push(request), { node, readAt: 'now', overlays: [], tasks: [] }) });
    const r = await route(new URLSearchParams('host=1&overlays=ingress'));
    expect(r).toEqual({ status: 200, body: { node: 'host-a', readAt: 'now', overlays: [], tasks: [] } });
    expect(seen).toEqual([{ host: true, sbox: false, overlays: ['ingress'], tasks: [] }]);
  });
});
