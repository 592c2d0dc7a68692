import { setSysctl } from '../sandbox/sysctl.js';
import { emptyHostRuleSet, HOSTPORT_CHAIN, hostRuleSet, INGRESS_CHAIN, taskRuleSet } from './iptables-render.js';
import type { SysctlSetting } from './iptables-ruleset.js';
import type { IptablesState } from './iptables-save-parse.js';
import type { IptablesWriter, IptablesApplyOptions, IptablesApplyResult } from './iptables-writer.js';
import type { HostPlan, TaskPlan } from './mesh-plan.js';

/** A host apply also says which UDP ports stopped being published (their conntrack entries were flushed). */
export interface HostApplyResult extends IptablesApplyResult {
  unpublishedUdpPorts: number[];
}

function udpDnatPorts(state: IptablesState): Set<number> {
  const ports = new Set<number>();
  for (const chain of [INGRESS_CHAIN, HOSTPORT_CHAIN]) {
    for (const rule of state.get('nat')?.get(chain) ?? []) {
      const m = /^-p udp -m udp --dport (\d+) -j DNAT/.exec(rule);
      if (m) ports.add(Number(m[1]));
    }
  }
  return ports;
}

/**
 * Makes the host namespace behind `writer` hold the plan's rules (DOCKER-INGRESS, mode=host
 * DNATs, masquerades); null removes everything the mesh put there (the node left the mesh).
 * UDP flows to ports that stopped being published lose their conntrack entries. Sysctls are
 * not touched: apply `host.sysctls` first (applySysctls), so DNATed localhost traffic is routable.
 */
export async function applyHostRules(writer: IptablesWriter, host: HostPlan | null, opts: IptablesApplyOptions = {}): Promise<HostApplyResult> {
  const desired = host ? hostRuleSet(host) : emptyHostRuleSet();
  const result = await writer.apply(desired, opts);
  if (!result.changed) return { ...result, unpublishedUdpPorts: [] };
  const kept = udpDnatPorts(new Map([['nat', new Map(desired.chains.filter((c) => c.table === 'nat').map((c) => [c.name, c.rules]))]]));
  const unpublishedUdpPorts = [...udpDnatPorts(result.previous)].filter((p) => !kept.has(p)).sort((a, b) => a - b);
  await writer.forgetUdpFlows(unpublishedUdpPorts);
  return { ...result, unpublishedUdpPorts };
}

/** Makes a task namespace hold its published-port redirects; null (or no redirects) removes the mesh's rules there. */
export function applyTaskRules(
  writer: IptablesWriter,
  task: Pick<TaskPlan, 'redirects'> | null,
  opts: IptablesApplyOptions = {},
): Promise<IptablesApplyResult> {
  return writer.apply(taskRuleSet(task ?? { redirects: [] }), opts);
}

/** Sets each sysctl in the namespace (the links they name must exist). */
export function applySysctls(netns: string | null, sysctls: readonly SysctlSetting[]): void {
  for (const s of sysctls) setSysctl(netns, s.key, s.value);
}
