import { ipv6Twin } from '../model/ipv6.js';
import { hostPlan6, hostRuleSet6 } from '../mesh/host-ports-v6.js';
import type { IptablesRuleSet } from '../mesh/iptables-ruleset.js';
import type { MeshPlan } from '../mesh/mesh-plan.js';
import { gwbridgeIpv6, type GwLeg6 } from './gwbridge-v6.js';
import type { LocalTask, NodeSettings, SysctlTarget } from './node-plan.js';

// The node plan's mode=host ports over v6, in one place so node-plan.ts calls it in a line or two. Nothing at all
// unless a local task publishes a mode=host port from a dual-stack network: a v4-only cluster plans what it did.

type LegTask = Pick<LocalTask, 'service' | 'interfaces' | 'gw'>;

/** Pure: the v6 side of a task's gwbridge leg, which only a task publishing mode=host from a dual-stack network has. */
export function hostPortLeg6(task: LegTask, gw: NodeSettings['gwbridge']): { v6?: GwLeg6 } {
  if (!task.service.ports.some((p) => p.mode === 'host') || !task.interfaces.some((i) => i.ip6 !== undefined)) return {};
  const g6 = gwbridgeIpv6(gw);
  return { v6: { ip6: ipv6Twin(gw.subnet, g6.subnet6, task.gw.ip), gateway6: g6.gateway6 } };
}

/**
 * Pure: the host's ip6tables rules (mode=host ports over v6, the v6 ingress ports too when `ingress6`, and the v6
 * bridge isolation) and the host sysctls they need, once some local task has a v6 leg; null while none has.
 */
export function hostPortsV6(plan: MeshPlan, ingress6: boolean, tasks: readonly (LegTask & { record: { id: string } })[], gw: NodeSettings['gwbridge']): { rules: IptablesRuleSet; sysctls: SysctlTarget[] } | null {
  const legs = new Map(tasks.flatMap((t) => {
    const v6 = hostPortLeg6(t, gw).v6;
    return v6 ? [[t.record.id, v6.ip6] as const] : [];
  }));
  const g6 = gwbridgeIpv6(gw);
  const host = hostPlan6(plan.host, { gwSubnet6: g6.subnet6, sboxGw6: g6.sbox6, taskGw6: (id) => legs.get(id) }, { ingress6, tasksWithLeg6: legs.size });
  if (!host) return null;
  // The v6 ingress already asks for forwarding; asking twice would only repeat the write.
  return { rules: hostRuleSet6(host), sysctls: ingress6 ? [] : [{ netns: null, key: 'net.ipv6.conf.all.forwarding', value: '1' }] };
}
