import type { LbBackendTarget, VirtualService } from '../vip/lb-table.js';
import { hostRuleSet } from './iptables-render.js';
import type { IptablesRuleSet, SysctlSetting } from './iptables-ruleset.js';
import { parseMeshInput, type MeshInput } from './mesh-input.js';
import type { MeshPlan, ReturnRoute } from './mesh-plan.js';
import { claimPublishedPorts } from './published-ports.js';

// Published ports over IPv6, derived from the v4 mesh plan so both families publish, balance, drain and honour
// policy=local alike. The host DNATs [its v6 address]:P to the sandbox's v6 gwbridge address (ip6tables, its own
// writer); the sandbox's `ip6 meshnet6` table sends it on to [task v6 ingress address]:TARGET. The v6 side DNATs
// straight to the target port instead of keeping P for a REDIRECT in each task as v4 does (Docker's IPVS fwmark
// services cannot change the port; nftables can), so task namespaces need no ip6tables at all.

/** The v6 addresses the v6 published ports use on one node. */
export interface IngressV6Addresses {
  /** The sandbox's v6 address on the gwbridge: the host's DNAT target. */
  sboxGw6: string;
  /** The gwbridge's v6 subnet (masquerade of what leaves the host from it). */
  gwSubnet6: string;
  /** The sandbox's v6 address on the ingress network: the source of balanced policy=cluster connections. */
  sboxIngress6: string;
  /** A task's v6 ingress address from its v4 one; undefined leaves the task out of the v6 backends. */
  taskIngress6(ip4: string): string | undefined;
  /** The ingress network's v6 subnet (on-link in a policy=local task's v6 return table). */
  ingressSubnet6: string;
}

/** What a node holds for v6 published ports. */
export interface IngressV6Plan {
  /** The sandbox's v6 frontends (rendered into `ip6 meshnet6` by the dual-stack backend). */
  sboxServices: VirtualService[];
  /** The host's DOCKER-INGRESS for ip6tables. */
  hostRules: IptablesRuleSet;
  hostSysctls: SysctlSetting[];
  sboxSysctls: SysctlSetting[];
}

/** The v6 id of a published port's sandbox service: never equal to the v4 one (`ingress-tcp-P`). */
export function ingressServiceId6(v4Id: string): string {
  return v4Id.replace(/^ingress-/, 'ingress6-');
}

/** Pure: the v6 twin of a mesh plan's published ports (`input` is what the plan was computed from). */
export function ingressV6Plan(plan: MeshPlan, input: MeshInput, a: IngressV6Addresses): IngressV6Plan {
  const target = new Map<string, number>();
  for (const { spec } of claimPublishedPorts(parseMeshInput(input).services).ingress) target.set(`${spec.protocol}/${spec.published}`, spec.target);
  const sboxServices = plan.sbox.virtualServices.map((vs): VirtualService => {
    const port = target.get(`${vs.frontend.protocol}/${vs.frontend.port}`) ?? vs.frontend.port;
    const backends = vs.backends.flatMap((b): LbBackendTarget[] => {
      const ip6 = a.taskIngress6(b.address);
      return ip6 === undefined ? [] : [{ address: ip6, port, weight: b.weight }];
    });
    return {
      id: ingressServiceId6(vs.id),
      frontend: { ...vs.frontend, address: a.sboxGw6 },
      scheduler: vs.scheduler,
      ...(vs.persistenceSeconds !== undefined ? { persistenceSeconds: vs.persistenceSeconds } : {}),
      ...(vs.sourceNat !== undefined ? { sourceNat: a.sboxIngress6 } : {}),
      backends,
    };
  });
  // mode=host ports over v6 are host-ports-v6.ts's: they need v6 task legs, which the ingress does not.
  const host = { ...plan.host, sboxAddress: a.sboxGw6, gwbridge: { ...plan.host.gwbridge, subnet: a.gwSubnet6 }, hostModePorts: [] };
  return {
    sboxServices,
    hostRules: hostRuleSet(host, 'ipv6'),
    hostSysctls: [{ key: 'net.ipv6.conf.all.forwarding', value: '1' }],
    sboxSysctls: [{ key: 'net.ipv6.conf.all.forwarding', value: '1' }],
  };
}

/**
 * Pure: the v6 twin of a task's policy=local return route (null when it has none, or no v6 ingress address): replies
 * from its v6 ingress address to real v6 clients go back through the local sandbox, as v4 ones do.
 */
export function returnRoute6(route: ReturnRoute | null, a: IngressV6Addresses): ReturnRoute | null {
  const from = route ? a.taskIngress6(route.from) : undefined;
  if (!route || from === undefined) return null;
  return { ...route, from, routes: [{ to: a.ingressSubnet6 }, { to: 'default', via: a.sboxIngress6 }] };
}
