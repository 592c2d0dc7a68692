import { HOST_COMMENT, INGRESS_CHAIN, hostRuleSet } from './iptables-render.js';
import { commentMatch } from './iptables-match.js';
import type { IptablesRuleSet } from './iptables-ruleset.js';
import type { HostModePort, HostPlan } from './mesh-plan.js';

// mode=host ports over IPv6, as Docker publishes a host port with ip6tables: the host DNATs [its v6 address]:P to
// the task's v6 address on the gwbridge at the target port. A task gets that address only when it publishes a
// mode=host port from a dual-stack network, so a v4-only cluster has no v6 leg, rule or sysctl.

/** The v6 addresses mode=host ports over v6 use on one node. */
export interface HostPortsV6Addresses {
  /** The gwbridge's v6 subnet. */
  gwSubnet6: string;
  /** The sandbox's v6 gwbridge address (DNAT target of v6 ingress ports, when the ingress is dual stack). */
  sboxGw6: string;
  /** A local task's v6 gwbridge address; undefined: the task has none and its ports stay v4. */
  taskGw6(taskId: string): string | undefined;
}

/** Pure: the v6 twins of a plan's mode=host ports, for the tasks that have a v6 gwbridge address. */
export function hostModePorts6(ports: readonly HostModePort[], taskGw6: (taskId: string) => string | undefined): HostModePort[] {
  return ports.flatMap((p) => {
    const taskAddress = taskGw6(p.taskId);
    return taskAddress === undefined ? [] : [{ ...p, taskAddress }];
  });
}

/**
 * Pure: the host's v6 plan once some local task has a v6 gwbridge address: its mode=host ports over v6 and, with
 * `ingress6`, the v6 ingress ports too (one ip6tables owner holds both). Null when no task has a v6 leg.
 */
export function hostPlan6(host: HostPlan, a: HostPortsV6Addresses, opts: { ingress6: boolean; tasksWithLeg6: number }): HostPlan | null {
  if (opts.tasksWithLeg6 === 0) return null;
  return {
    ...host,
    gwbridge: { ...host.gwbridge, subnet: a.gwSubnet6 },
    sboxAddress: a.sboxGw6,
    ingressPorts: opts.ingress6 ? host.ingressPorts : [],
    hostModePorts: hostModePorts6(host.hostModePorts, a.taskGw6),
  };
}

/**
 * Pure: the ip6tables rule set of a v6 host plan whose tasks have v6 legs. Besides the DNATs, the filter chain
 * isolates the bridge for v6 as MESHNET-ISOLATION does for v4 (gwbridge-isolation.ts, which is iptables only): a task
 * leg sends from the bridge's v6 subnet only, reaches another leg only through a DNAT, and nothing outside reaches a
 * leg except replies and DNATed connections.
 */
export function hostRuleSet6(host: HostPlan): IptablesRuleSet {
  const set = hostRuleSet(host, 'ipv6');
  const gw = host.gwbridge.name;
  const isolation = [
    `-o ${gw} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`,
    `! -s ${host.gwbridge.subnet} -i ${gw} -j DROP`,
    `-i ${gw} -o ${gw} -j DROP`,
    `-o ${gw} -j DROP`,
  ];
  const filter = set.chains.find((c) => c.table === 'filter' && c.name === INGRESS_CHAIN);
  if (filter) {
    // Before the chain's final RETURN, after the per-port ACCEPTs: those stay first, as for v4.
    filter.rules.splice(filter.rules.length - 1, 0, ...isolation);
  } else {
    set.chains.push({ table: 'filter', name: INGRESS_CHAIN, rules: [...isolation, '-j RETURN'] });
    set.builtins.push({ table: 'filter', chain: 'FORWARD', rule: `${commentMatch(HOST_COMMENT)} -j ${INGRESS_CHAIN}` });
  }
  return set;
}
