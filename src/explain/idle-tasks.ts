import type { ServiceRecord } from '../model/records.js';
import type { IdleTask, Problem } from './explanation.js';
import { taskName, type ClusterFacts, type Views } from './cluster-facts.js';

/**
 * Tasks of `service` with an address on `network` that the balancer does not send to, and why:
 * their state, and for a task that runs but never became ready, what it listens on instead of
 * `port` (read from its namespace). A task that should serve and does not is a warning with a fix.
 */
export function idleTasks(
  facts: ClusterFacts,
  views: Views,
  service: ServiceRecord,
  network: string,
  backends: ReadonlySet<string>,
  want: { protocol: 'tcp' | 'udp'; port: number } | null,
): { idle: IdleTask[]; problems: Problem[] } {
  const idle: IdleTask[] = [];
  const problems: Problem[] = [];
  for (const t of facts.tasks.filter((x) => x.service === service.name)) {
    const ip = t.addresses[network]?.ip;
    if (!ip || backends.has(ip)) continue;
    const name = taskName(t);
    if (t.desiredState === 'shutdown') {
      idle.push({ task: name, node: t.node, state: t.state, reason: 'shutting down (drained and gone from the table)' });
      continue;
    }
    const view = views.get(t.node)?.tasks.find((v) => v.taskId === t.id);
    let reason = `state ${t.state}${t.message ? ` (${t.message})` : ''}`;
    let fix = `see meshnet task ls; the agent on ${t.node} adds the task when it runs and listens`;
    if (view && !view.exists) reason += `; its namespace is missing on ${t.node}`;
    else if (view && want && !view.listening[want.protocol].includes(want.port)) {
      const has = view.listening[want.protocol];
      reason += `; nothing listens on ${want.protocol} ${want.port} in its namespace${has.length ? ` (it listens on ${want.protocol} ${has.join(', ')})` : ''}`;
      fix = `make the service's command listen on ${want.port}${has.length ? `, or set the service's target port to ${has[0]}` : ''}: a task enters the table only once it listens on its target port`;
    } else if (!facts.nodes.some((n) => n.id === t.node)) {
      reason += `; its node ${t.node} is down (no lease)`;
      fix = `start the agent on ${t.node}, or wait: its tasks move once its lease ends`;
    }
    idle.push({ task: name, node: t.node, state: t.state, reason });
    problems.push({ severity: 'warn', node: t.node, namespace: name, message: `${name} on ${t.node} is not a backend: ${reason}`, fix });
  }
  return { idle, problems };
}
