import { execIn } from '../sandbox/exec.js';
import { setSysctl } from '../sandbox/sysctl.js';
import type { IptablesRuleSet, IptablesTable, SysctlSetting } from './iptables-ruleset.js';
import { parseIptablesSave, type IptablesState } from './iptables-save-parse.js';
import {
  emptyHostRuleSet,
  HOSTPORT_CHAIN,
  hostRuleSet,
  INGRESS_CHAIN,
  renderRestore,
  tablesOf,
  taskRuleSet,
} from './iptables-render.js';
import type { HostPlan, TaskPlan } from './mesh-plan.js';

/**
 * Which iptables tools to run. `auto` uses `iptables-restore`/`iptables-save` as installed
 * (the Debian alternative: nf_tables here); `nft` and `legacy` pin one backend, for hosts
 * where the other one holds the rules that matter (a host's Docker, say).
 */
export type IptablesFlavor = 'auto' | 'nft' | 'legacy';

export interface IptablesApplyOptions {
  flavor?: IptablesFlavor;
}

/** What an apply did: the transaction fed to iptables-restore, or null when nothing differed. */
export interface IptablesApplyResult {
  changed: boolean;
  script: string | null;
}

/** A host apply also says which UDP ports stopped being published (their conntrack entries were flushed). */
export interface HostApplyResult extends IptablesApplyResult {
  unpublishedUdpPorts: number[];
}

function tool(flavor: IptablesFlavor, name: 'save' | 'restore'): string {
  return flavor === 'auto' ? `iptables-${name}` : `iptables-${flavor}-${name}`;
}

/** Reads the given tables of a namespace as iptables-save prints them. */
export async function readIptables(
  netns: string | null,
  tables: readonly IptablesTable[],
  opts: IptablesApplyOptions = {},
): Promise<IptablesState> {
  const state: IptablesState = new Map();
  for (const table of tables) {
    const { stdout } = await execIn(netns, [tool(opts.flavor ?? 'auto', 'save'), '-t', table], { timeoutMs: 30_000 });
    const parsed = parseIptablesSave(stdout).get(table);
    if (parsed) state.set(table, parsed);
  }
  return state;
}

/**
 * Makes a namespace hold exactly `desired` for its owner: reads back the tables involved,
 * renders the difference and feeds it to ONE `iptables-restore --noflush` (atomic per run).
 * Applying the same rule set twice writes nothing the second time.
 */
export async function applyRuleSet(
  netns: string | null,
  desired: IptablesRuleSet,
  opts: IptablesApplyOptions = {},
): Promise<IptablesApplyResult> {
  return (await applyRuleSetFrom(netns, desired, opts)).result;
}

async function applyRuleSetFrom(
  netns: string | null,
  desired: IptablesRuleSet,
  opts: IptablesApplyOptions,
): Promise<{ result: IptablesApplyResult; before: IptablesState }> {
  const before = await readIptables(netns, tablesOf(desired), opts);
  const script = renderRestore(desired, before);
  if (script === null) return { result: { changed: false, script: null }, before };
  await execIn(netns, [tool(opts.flavor ?? 'auto', 'restore'), '--noflush', '-w', '5'], { input: script, timeoutMs: 30_000 });
  return { result: { changed: true, script }, before };
}

// UDP has no connection end: without a flush, a client that keeps sending would stay DNATed
// to the sandbox by its old conntrack entry after the port is unpublished.
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

async function applyHostRuleSet(
  hostNetns: string | null,
  desired: IptablesRuleSet,
  opts: IptablesApplyOptions,
): Promise<HostApplyResult> {
  const { result, before } = await applyRuleSetFrom(hostNetns, desired, opts);
  const desiredNat = new Map(desired.chains.filter((c) => c.table === 'nat').map((c) => [c.name, c.rules]));
  const kept = udpDnatPorts(new Map([['nat', desiredNat]]));
  const unpublishedUdpPorts = [...udpDnatPorts(before)].filter((p) => !kept.has(p)).sort((a, b) => a - b);
  for (const port of unpublishedUdpPorts) {
    // Exit code 1 only means there was nothing to delete.
    await execIn(hostNetns, ['conntrack', '-D', '-p', 'udp', '--orig-port-dst', String(port)], { allowFailure: true });
  }
  return { ...result, unpublishedUdpPorts };
}

/** Sets each sysctl in the namespace (the links they name must exist). */
export function applySysctls(netns: string | null, sysctls: readonly SysctlSetting[]): void {
  for (const s of sysctls) setSysctl(netns, s.key, s.value);
}

/** Applies a plan's host part: sysctls first (so DNATed localhost traffic is routable), then the rules. */
export async function applyHostPlan(
  hostNetns: string | null,
  host: HostPlan,
  opts: IptablesApplyOptions = {},
): Promise<HostApplyResult> {
  applySysctls(hostNetns, host.sysctls);
  return applyHostRuleSet(hostNetns, hostRuleSet(host), opts);
}

/** Removes every rule and chain the mesh added to the host namespace (sysctls are left as they are). */
export async function removeHostRules(hostNetns: string | null, opts: IptablesApplyOptions = {}): Promise<HostApplyResult> {
  return applyHostRuleSet(hostNetns, emptyHostRuleSet(), opts);
}

/** Applies a task's redirects in its namespace; a task without redirects gets its mesh rules removed. */
export async function applyTaskPlan(
  taskNetns: string,
  task: Pick<TaskPlan, 'redirects'>,
  opts: IptablesApplyOptions = {},
): Promise<IptablesApplyResult> {
  return applyRuleSet(taskNetns, taskRuleSet(task), opts);
}
