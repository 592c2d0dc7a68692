import { hop, type BackendBranch, type Problem } from './explanation.js';
import { inNs, linkText, linkWithAddress, linksV6, taskName, type ClusterFacts, type Views } from './cluster-facts.js';

// The one backend of a mode=host port: the local task whose gwbridge leg holds the address the host DNATs to. Its
// address is the node's own (not in the store), so the task is found by reading the namespaces of the service's
// tasks on that node.

/** Pure: the task a mode=host DNAT reaches on `node`, and whether it listens on the target port (v6: its v6 leg). */
export function hostPortBackend(facts: ClusterFacts, views: Views, node: string, service: string, protocol: 'tcp' | 'udp', to: { address: string; port: number }): BackendBranch {
  const branch: BackendBranch = { address: to.address, port: to.port, weight: 1, share: 1, hops: [], delivered: false };
  const v6 = to.address.includes(':');
  const mine = facts.tasks.filter((t) => t.service === service && t.node === node);
  const views6 = (views.get(node)?.tasks ?? []).map((v) => (v6 ? { ...v, links: linksV6(v.links) } : v));
  const task = mine.find((t) => views6.some((v) => v.taskId === t.id && linkWithAddress(v.links, to.address)));
  if (!task) {
    const problems: Problem[] = [{ severity: 'stop', node, namespace: 'host', message: `no task of ${service} on ${node} holds ${to.address}, where the host DNATs the port: the rule is stale or the task's leg is missing`, fix: `the agent on ${node} rewires the task and rewrites the rule on its next pass; check it runs (meshnet node ls) and read its log` }];
    branch.hops.push(hop({ kind: 'task', node, namespace: 'host', title: `${to.address}: no task`, details: [], problems }));
    return branch;
  }
  const name = taskName(task);
  const tv = views6.find((v) => v.taskId === task.id)!;
  const itf = linkWithAddress(tv.links, to.address)!;
  const problems: Problem[] = [];
  const details = [`state ${task.state}, desired ${task.desiredState}`, linkText(itf)];
  const listening = tv.listening[protocol];
  if (!itf.up) problems.push({ severity: 'stop', node, namespace: name, message: `${itf.name} of ${name} is down`, fix: `${inNs(tv.path)}ip link set ${itf.name} up` });
  if (listening.includes(to.port)) details.push(`a process ${protocol === 'tcp' ? 'listens' : 'is bound'} on ${protocol} ${to.port}`);
  else {
    problems.push({
      severity: 'stop',
      node,
      namespace: name,
      message: `nothing listens on ${protocol} ${to.port} in ${name}${listening.length ? ` (it has ${protocol} ${listening.join(', ')})` : ''}`,
      fix: `make the service's command listen on ${v6 ? `[::]:${to.port} (a v4-only socket does not take v6)` : to.port}`,
    });
  }
  Object.assign(branch, { task: name, node });
  branch.hops.push(hop({ kind: 'task', node, namespace: name, title: `${name} on ${node}, port ${to.port}`, details, problems }));
  branch.delivered = problems.length === 0;
  return branch;
}
