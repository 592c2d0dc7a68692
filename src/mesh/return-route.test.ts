import { describe, expect, it } from 'vitest';
import type { RouteInfo, RuleInfo } from '../sandbox/rtnl.js';
import { knownState } from './fixtures.test-data.js';
import { computeMeshPlan } from './published-ports.js';
import { planReturnRoute, syncReturnRoute, type ObservedReturnRoute, type ReturnRouteNetlink } from './return-route.js';

const api1 = computeMeshPlan(knownState()).tasks.find((t) => t.taskId === 'api.1')!.returnRoute!;
const held: ObservedReturnRoute = {
  rules: [{ from: '10.255.0.9', table: 2550, priority: 2550 }],
  routes: [
    { dst: '10.255.0.0/16', table: 2550, dev: 'eth1', oif: 3 },
    { dst: 'default', table: 2550, gateway: '10.255.0.2', dev: 'eth1', oif: 3 },
  ],
};

describe('planReturnRoute', () => {
  it('on an empty namespace: the ingress subnet on-link and the default via the sandbox, then the source rule', () => {
    expect(planReturnRoute({ rules: [], routes: [] }, api1)).toEqual([
      { op: 'replaceRoute', route: { dst: '10.255.0.0/16', dev: 'eth1', table: 2550 } },
      { op: 'replaceRoute', route: { dst: 'default', dev: 'eth1', table: 2550, gateway: '10.255.0.2' } },
      { op: 'addRule', rule: { from: '10.255.0.9', table: 2550, priority: 2550 } },
    ]);
  });

  it('writes nothing when the namespace holds the route already; other tables and priorities are not ours', () => {
    const withOthers: ObservedReturnRoute = {
      rules: [...held.rules, { from: '10.0.0.5', table: 100, priority: 100 }],
      routes: [...held.routes, { dst: 'default', table: 254, gateway: '172.18.0.1', dev: 'eth0' }],
    };
    expect(planReturnRoute(withOthers, api1)).toEqual([]);
  });

  it('repairs drift: a wrong gateway is replaced, a stale route and a stale or duplicate rule go', () => {
    const drifted: ObservedReturnRoute = {
      rules: [
        { from: '10.255.0.9', table: 2550, priority: 2550 },
        { from: '10.255.0.9', table: 2550, priority: 2550 },
        { from: '10.255.0.77', table: 2550, priority: 2550 },
      ],
      routes: [
        { dst: '10.255.0.0/16', table: 2550, dev: 'eth1' },
        { dst: 'default', table: 2550, gateway: '10.255.0.3', dev: 'eth1' },
        { dst: '192.168.0.0/24', table: 2550, dev: 'eth1' },
      ],
    };
    expect(planReturnRoute(drifted, api1)).toEqual([
      { op: 'replaceRoute', route: { dst: 'default', dev: 'eth1', table: 2550, gateway: '10.255.0.2' } },
      { op: 'deleteRoute', dst: '192.168.0.0/24', table: 2550 },
      { op: 'deleteRule', rule: { from: '10.255.0.77', table: 2550, priority: 2550 } },
      { op: 'deleteRule', rule: { from: '10.255.0.9', table: 2550, priority: 2550 } },
    ]);
  });

  it('removal (null plan): the rule leaves first, then every route of the table', () => {
    expect(planReturnRoute(held, null)).toEqual([
      { op: 'deleteRule', rule: { from: '10.255.0.9', table: 2550, priority: 2550 } },
      { op: 'deleteRoute', dst: '10.255.0.0/16', table: 2550 },
      { op: 'deleteRoute', dst: 'default', table: 2550 },
    ]);
    expect(planReturnRoute({ rules: [], routes: [] }, null)).toEqual([]);
  });
});

/** An in-memory rtnetlink holding rules and routes, counting writes. */
function fakeNetlink(): ReturnRouteNetlink & { rulesHeld: RuleInfo[]; routesHeld: RouteInfo[]; writes: number } {
  const f = {
    rulesHeld: [] as RuleInfo[],
    routesHeld: [] as RouteInfo[],
    writes: 0,
    rules: async () => f.rulesHeld.map((r) => ({ ...r })),
    routes: async (filter: { table?: number } = {}) => f.routesHeld.filter((r) => filter.table === undefined || r.table === filter.table),
    replaceRoute: async (r: { dst: string; gateway?: string; dev?: string; table?: number }) => {
      f.writes++;
      f.routesHeld = f.routesHeld.filter((x) => !(x.dst === r.dst && x.table === (r.table ?? 254)));
      f.routesHeld.push({ dst: r.dst, table: r.table ?? 254, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.dev ? { dev: r.dev } : {}) });
    },
    deleteRoute: async (r: { dst: string; table?: number }) => {
      f.writes++;
      const before = f.routesHeld.length;
      f.routesHeld = f.routesHeld.filter((x) => !(x.dst === r.dst && x.table === (r.table ?? 254)));
      return f.routesHeld.length < before;
    },
    addRule: async (r: RuleInfo) => {
      f.writes++;
      f.rulesHeld.push({ ...r });
    },
    deleteRule: async (r: RuleInfo) => {
      f.writes++;
      const at = f.rulesHeld.findIndex((x) => x.from === r.from && x.table === r.table && x.priority === r.priority);
      if (at >= 0) f.rulesHeld.splice(at, 1);
      return at >= 0;
    },
  };
  return f;
}

describe('syncReturnRoute', () => {
  it('applies, reports an unchanged second call, and removes what it added', async () => {
    const nl = fakeNetlink();
    expect(await syncReturnRoute(nl, api1)).toBe(true);
    expect(nl.writes).toBe(3);
    expect(await syncReturnRoute(nl, api1)).toBe(false);
    expect(nl.writes).toBe(3);
    expect(await syncReturnRoute(nl, null)).toBe(true);
    expect(nl.rulesHeld).toEqual([]);
    expect(nl.routesHeld).toEqual([]);
    expect(await syncReturnRoute(nl, null)).toBe(false);
  });
});
