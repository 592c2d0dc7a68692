import type { LbBackend } from '../vip/lb-table.js';
import type { MeshConflictError } from './errors.js';
import type { HealthServers } from './health-server.js';
import { applyHostPlan, applySysctls, applyTaskPlan, type IptablesApplyOptions } from './iptables-apply.js';
import type { MeshPlan } from './mesh-plan.js';
import { RETURN_ROUTE_PRIORITY, RETURN_ROUTE_TABLE } from './published-ports.js';
import { applyReturnRoute, removeReturnRoute } from './return-route.js';

/** Where a node's mesh lives: the namespaces, the sandbox's load-balancing backend and the health servers. */
export interface MeshTargets {
  /** The node's host namespace (null: the one the agent runs in). */
  hostNetns: string | null;
  /** The ingress sandbox's namespace (it and its links must exist). */
  sboxNetns: string;
  /** The VIP layer's backend bound to the ingress sandbox. */
  sboxLb: LbBackend;
  health: HealthServers;
  /** Every local task's namespace, by task id: tasks the plan leaves out get their mesh rules removed. */
  localTasks: ReadonlyMap<string, string>;
  iptables?: IptablesApplyOptions;
}

/** What one pass changed and what it could not do, for the agent's log. */
export interface MeshApplyReport {
  hostChanged: boolean;
  sboxChanges: number;
  tasksChanged: string[];
  conflicts: MeshConflictError[];
  /** Per-task failures (a task namespace that vanished mid-pass): the rest of the pass still ran. */
  taskErrors: { taskId: string; error: Error }[];
}

/**
 * Applies a node's mesh plan, in the order traffic needs it: the sandbox's services and each
 * task's redirect exist before the host starts sending published traffic, so a new port never
 * lands on an empty sandbox. Level-triggered: run it on every change and periodically.
 */
export async function applyMeshPlan(plan: MeshPlan, targets: MeshTargets): Promise<MeshApplyReport> {
  const report: MeshApplyReport = { hostChanged: false, sboxChanges: 0, tasksChanged: [], conflicts: plan.conflicts, taskErrors: [] };
  const planned = new Map(plan.tasks.map((t) => [t.taskId, t]));
  for (const [taskId, netns] of targets.localTasks) {
    const task = planned.get(taskId);
    try {
      const result = await applyTaskPlan(netns, task ?? { redirects: [] }, targets.iptables);
      if (task?.returnRoute) await applyReturnRoute(netns, task.returnRoute);
      else await removeReturnRoute(netns, { table: RETURN_ROUTE_TABLE, priority: RETURN_ROUTE_PRIORITY });
      if (result.changed) report.tasksChanged.push(taskId);
    } catch (err) {
      report.taskErrors.push({ taskId, error: err as Error });
    }
  }
  applySysctls(targets.sboxNetns, plan.sbox.sysctls);
  report.sboxChanges = (await targets.sboxLb.apply({ services: plan.sbox.virtualServices })).changes;
  report.hostChanged = (await applyHostPlan(targets.hostNetns, plan.host, targets.iptables)).changed;
  await targets.health.reconcile(plan.health);
  return report;
}
