import { describe, expect, it } from 'vitest';
import { parseTarget, resolveQuery, viewRequests } from './explain-query.js';
import { explainViews } from './explain-run.js';
import { factsFixture, viewsFixture } from './explain-fixtures.test-data.js';
import { renderIp6Table } from '../vip/nft/ip6-table.js';
import { parseKernelViewQuery, kernelViewQuery } from './kernel-view-route.js';
import type { ClusterFacts } from './cluster-facts.js';

const VIP6 = 'fd6d:6573:686e:1::64';
const six = (slot: number) => `fd6d:6573:686e:1::${slot + 10}`;

/** The fixture's cluster with the ingress network dual stack: a v6 VIP and a v6 twin per task. */
function dualFacts(): ClusterFacts {
  const f = factsFixture();
  f.services[0]!.vips6 = { ingress: VIP6 };
  for (const t of f.tasks) t.addresses['ingress']!.ip6 = six(t.slot);
  return f;
}

describe('explain a v6 VIP', () => {
  const facts = dualFacts();

  it('parses [V6]:PORT (any shorthand) and reads the client task\'s v6 table', () => {
    expect(parseTarget('[FD6D:6573:686E:1:0::64]:80')).toEqual({ kind: 'endpoint', host: VIP6, port: 80, protocol: 'tcp' });
    expect(() => parseTarget('[fd6d::zz]:80')).toThrow(/\[V6VIP\]:PORT/);
    const q = resolveQuery(parseTarget(`[${VIP6}]:80`), facts, { from: 'web.2' });
    expect(q).toEqual({ kind: 'vip', target: { vip: VIP6, port: 80, protocol: 'tcp', fromTask: 'task00000002' } });
    const req = viewRequests(q, facts).get('host-b')!;
    expect(req.tasks).toContainEqual({ id: 'task00000002', lb6: true });
    expect(parseKernelViewQuery(kernelViewQuery(req)).tasks).toContainEqual({ id: 'task00000002', lb6: true });
  });

  it('follows the table to each v6 backend and says which one does not listen', () => {
    const q = resolveQuery(parseTarget(`[${VIP6}]:80`), facts, { from: 'web.2' });
    const table = renderIp6Table([{ id: 'web', frontend: { kind: 'vip', address: VIP6, protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: facts.tasks.map((t) => ({ address: six(t.slot), port: 0, weight: 1 })) }]);
    const views = viewsFixture();
    for (const v of views.values()) for (const t of v.tasks) if (t.taskId === 'task00000002') t.lb6 = table;
    const deaf = views.get('host-c')!.tasks.find((t) => t.taskId === 'task00000003')!;
    deaf.listening = { tcp: [], udp: [] };
    const [e] = explainViews(q, facts, views);
    expect(e!.hops[0]!.details[0]).toBe(`from ${six(2)}: ip6 meshnet6 DNAT to ${six(1)}, ${six(2)}, ${six(3)}`);
    expect(e!.backends.map((b) => [b.task, b.delivered])).toEqual([['web.1', true], ['web.2', true], ['web.3', false]]);
    expect(e!.verdict).toBe('partial');
    expect(e!.problems[0]!.message).toBe('nothing in web.3 listens on tcp 80');
  });

  it('stops at a client with no v6 table, or a VIP nobody owns', () => {
    const q = resolveQuery(parseTarget(`[${VIP6}]:80`), facts, { from: 'web.2' });
    const [e] = explainViews(q, facts, viewsFixture());
    expect(e!.verdict).toBe('stops');
    expect(e!.summary).toMatch(/has no ip6 meshnet6 table/);
    expect(() => resolveQuery(parseTarget('[fd00::1]:80'), facts, { from: 'web.2' })).toThrow(/no service VIP/);
  });
});
