import type { Rtnl } from '../sandbox/rtnl.js';
import type { ReturnRouteNetlink } from './return-route.js';

/**
 * The v6 calls of `rtnl` under the names syncReturnRoute uses, so the policy=local return route of a task's v6
 * ingress address is planned and applied by the very code of the v4 one.
 */
export function ipv6ReturnRouteNetlink(rtnl: Rtnl): ReturnRouteNetlink {
  return {
    rules: () => rtnl.rules6(),
    routes: (filter) => rtnl.routes6(filter),
    replaceRoute: (route) => rtnl.replaceRoute6(route),
    deleteRoute: (route) => rtnl.deleteRoute6(route),
    addRule: (rule) => rtnl.addRule6(rule),
    deleteRule: (rule) => rtnl.deleteRule6(rule),
  };
}
