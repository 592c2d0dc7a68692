import { execIn } from '../sandbox/exec.js';
import type { ReturnRoute } from './mesh-plan.js';

/**
 * The policy=local return route inside a task, applied with `ip` (the agent may apply the
 * same data over rtnetlink instead). Idempotent: routes are replaced, and the rule is only
 * rewritten when the one at its priority differs.
 */

/** The `ip` argument lists that make a task namespace hold `route`, in order. */
export function returnRouteCommands(route: ReturnRoute): string[][] {
  const routes = route.routes.map((r) => [
    'route',
    'replace',
    r.to,
    ...(r.via ? ['via', r.via] : []),
    'dev',
    route.device,
    ...(r.via ? [] : ['scope', 'link']),
    'table',
    String(route.table),
  ]);
  return [...routes, ['rule', 'add', 'from', route.from, 'lookup', String(route.table), 'pref', String(route.priority)]];
}

/** Makes the task namespace route replies from its ingress address through the local ingress sandbox. */
export async function applyReturnRoute(taskNetns: string, route: ReturnRoute): Promise<void> {
  const commands = returnRouteCommands(route);
  for (const argv of commands.slice(0, -1)) await execIn(taskNetns, ['ip', ...argv]);
  const shown = await execIn(taskNetns, ['ip', 'rule', 'show', 'pref', String(route.priority)]);
  const lines = shown.stdout.split('\n').filter((l) => l.trim() !== '');
  const want = `from ${route.from} lookup ${route.table}`;
  if (lines.length === 1 && lines[0]!.includes(want)) return;
  await removeReturnRule(taskNetns, route.priority, lines.length);
  await execIn(taskNetns, ['ip', ...commands.at(-1)!]);
}

/** Removes the return route's rule and table from a task namespace (missing is fine). */
export async function removeReturnRoute(taskNetns: string, route: Pick<ReturnRoute, 'table' | 'priority'>): Promise<void> {
  const shown = await execIn(taskNetns, ['ip', 'rule', 'show', 'pref', String(route.priority)]);
  const count = shown.stdout.split('\n').filter((l) => l.trim() !== '').length;
  // Without the rule the table is unreachable: skip the flush on the common path (nothing there).
  if (count === 0) return;
  await removeReturnRule(taskNetns, route.priority, count);
  await execIn(taskNetns, ['ip', 'route', 'flush', 'table', String(route.table)], { allowFailure: true });
}

async function removeReturnRule(netns: string, priority: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await execIn(netns, ['ip', 'rule', 'del', 'pref', String(priority)]);
}
