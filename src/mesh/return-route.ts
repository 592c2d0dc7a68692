import type { RouteInfo, RuleInfo, Rtnl } from '../sandbox/rtnl.js';
import type { ReturnRoute } from './mesh-plan.js';
import { RETURN_ROUTE_PRIORITY, RETURN_ROUTE_TABLE } from './published-ports.js';

/**
 * The policy=local return route inside a task namespace: the rule at RETURN_ROUTE_PRIORITY and
 * the routes of RETURN_ROUTE_TABLE. Planned as a pure difference, applied over rtnetlink.
 */

/** What a task namespace holds of the return route: the rules at its priority, the routes of its table. */
export interface ObservedReturnRoute {
  rules: RuleInfo[];
  routes: RouteInfo[];
}

/** One rtnetlink write. */
export type ReturnRouteOp =
  | { op: 'replaceRoute'; route: { dst: string; gateway?: string; dev: string; table: number } }
  | { op: 'deleteRoute'; dst: string; table: number }
  | { op: 'addRule'; rule: RuleInfo }
  | { op: 'deleteRule'; rule: RuleInfo };

const sameRoute = (have: RouteInfo, want: { to: string; via?: string }, device: string): boolean =>
  have.dst === want.to && have.gateway === want.via && have.dev === device;

/**
 * The writes that turn `observed` into `desired` (null: no return route). Routes go in before
 * the rule that leads to them, and the rule leaves before its routes, so the rule never points
 * replies at a half-filled table.
 */
export function planReturnRoute(observed: ObservedReturnRoute, desired: ReturnRoute | null): ReturnRouteOp[] {
  const table = desired?.table ?? RETURN_ROUTE_TABLE;
  const priority = desired?.priority ?? RETURN_ROUTE_PRIORITY;
  const rules = observed.rules.filter((r) => r.priority === priority);
  const routes = observed.routes.filter((r) => r.table === table);
  if (desired === null) {
    return [
      ...rules.map((rule): ReturnRouteOp => ({ op: 'deleteRule', rule })),
      ...routes.map((r): ReturnRouteOp => ({ op: 'deleteRoute', dst: r.dst, table })),
    ];
  }
  const ops: ReturnRouteOp[] = [];
  for (const want of desired.routes) {
    if (routes.some((r) => sameRoute(r, want, desired.device))) continue;
    ops.push({ op: 'replaceRoute', route: { dst: want.to, dev: desired.device, table, ...(want.via ? { gateway: want.via } : {}) } });
  }
  // A route replaced above has the same destination as the stale one, so only other destinations go.
  for (const r of routes) {
    if (!desired.routes.some((w) => w.to === r.dst)) ops.push({ op: 'deleteRoute', dst: r.dst, table });
  }
  const want: RuleInfo = { from: desired.from, table, priority };
  const exact = rules.filter((r) => r.from === want.from && r.table === want.table);
  for (const r of rules) if (r.from !== want.from || r.table !== want.table) ops.push({ op: 'deleteRule', rule: r });
  // The kernel keeps duplicate rules: a crash between add and record may have left two.
  for (const r of exact.slice(1)) ops.push({ op: 'deleteRule', rule: r });
  if (exact.length === 0) ops.push({ op: 'addRule', rule: want });
  return ops;
}

/** The rtnetlink calls the return route needs; `Rtnl` has them. */
export type ReturnRouteNetlink = Pick<Rtnl, 'rules' | 'routes' | 'replaceRoute' | 'deleteRoute' | 'addRule' | 'deleteRule'>;

/**
 * Makes the task namespace behind `rtnl` hold `desired` (null: no return route) and says
 * whether it changed anything. Reads the namespace (two dumps) on every call: call it when the
 * task's plan changed and on the periodic resync, not on every pass.
 */
export async function syncReturnRoute(rtnl: ReturnRouteNetlink, desired: ReturnRoute | null): Promise<boolean> {
  const observed: ObservedReturnRoute = {
    rules: await rtnl.rules(),
    routes: await rtnl.routes({ table: desired?.table ?? RETURN_ROUTE_TABLE }),
  };
  const ops = planReturnRoute(observed, desired);
  for (const op of ops) {
    switch (op.op) {
      case 'replaceRoute':
        await rtnl.replaceRoute(op.route);
        break;
      case 'deleteRoute':
        await rtnl.deleteRoute({ dst: op.dst, table: op.table });
        break;
      case 'addRule':
        await rtnl.addRule(op.rule);
        break;
      case 'deleteRule':
        await rtnl.deleteRule(op.rule);
        break;
    }
  }
  return ops.length > 0;
}
