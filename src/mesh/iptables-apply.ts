import { execIn } from '../sandbox/exec.js';
import { setSysctl } from '../sandbox/sysctl.js';
import type { IptablesRuleSet, IptablesTable, SysctlSetting } from './iptables-ruleset.js';
import { parseIptablesSave, type IptablesState } from './iptables-save-parse.js';
import { emptyHostRuleSet, hostRuleSet, renderRestore, tablesOf, taskRuleSet } from './iptables-render.js';
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
  const current = await readIptables(netns, tablesOf(desired), opts);
  const script = renderRestore(desired, current);
  if (script === null) return { changed: false, script: null };
  await execIn(netns, [tool(opts.flavor ?? 'auto', 'restore'), '--noflush', '-w', '5'], { input: script, timeoutMs: 30_000 });
  return { changed: true, script };
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
): Promise<IptablesApplyResult> {
  applySysctls(hostNetns, host.sysctls);
  return applyRuleSet(hostNetns, hostRuleSet(host), opts);
}

/** Removes every rule and chain the mesh added to the host namespace (sysctls are left as they are). */
export async function removeHostRules(hostNetns: string | null, opts: IptablesApplyOptions = {}): Promise<IptablesApplyResult> {
  return applyRuleSet(hostNetns, emptyHostRuleSet(), opts);
}

/** Applies a task's redirects in its namespace; a task without redirects gets its mesh rules removed. */
export async function applyTaskPlan(
  taskNetns: string,
  task: Pick<TaskPlan, 'redirects'>,
  opts: IptablesApplyOptions = {},
): Promise<IptablesApplyResult> {
  return applyRuleSet(taskNetns, taskRuleSet(task), opts);
}
