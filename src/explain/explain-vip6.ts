import type { ServiceRecord } from '../model/records.js';
import { traceIp6 } from '../vip/nft/ip6-tracer.js';
import { taskName, type ClusterFacts, type Views } from './cluster-facts.js';
import type { VipTarget } from './explain-vip.js';
import type { LbTableView } from './kernel-view.js';
import { conclude, hop, type BackendBranch, type Explanation, type Problem } from './explanation.js';
import { lbHop } from './lb-hop.js';

// A v6 VIP's path. The client task's `ip6 meshnet6` table is read as nft prints it and run through traceIp6 (the
// tracer of the rendered v6 rules), so explain says what that table does with a new connection; each target is then
// the v6 twin of a task, checked for a listener. The overlay hops are the v4 ones (same br0, same vxlan0 entries).

/** The service and network whose v6 VIP `ip` is, if any. */
export function vip6Owner(facts: ClusterFacts, ip: string): { service: ServiceRecord; network: string } | undefined {
  for (const service of facts.services) {
    const hit = Object.entries(service.vips6 ?? {}).find(([, v]) => v === ip);
    if (hit) return { service, network: hit[0] };
  }
  return undefined;
}

/** Pure: the path of a new connection from a task to a v6 VIP. */
export function explainVip6(facts: ClusterFacts, views: Views, unreadable: ReadonlyMap<string, string>, t: VipTarget): Explanation {
  const client = facts.tasks.find((x) => x.id === t.fromTask)!;
  const clientName = taskName(client);
  const target = `[${t.vip}]:${t.port}/${t.protocol} from ${clientName}`;
  const owner = vip6Owner(facts, t.vip);
  const node = client.node;
  const problems: Problem[] = [];
  const stop = (message: string, fix: string) => problems.push({ severity: 'stop', node, namespace: clientName, message, fix });
  const base = { target, ...(owner ? { service: owner.service.name } : {}), idleTasks: [] };
  const src = owner ? client.addresses[owner.network]?.ip6 : undefined;
  const tv = views.get(node)?.tasks.find((x) => x.taskId === client.id);
  if (!owner) stop(`${t.vip} is no service's v6 VIP`, 'see meshnet service inspect SERVICE for its VIPs');
  else if (!src) stop(`${clientName} has no v6 address on network ${owner.network}, where ${owner.service.name}'s v6 VIP ${t.vip} lives`, `attach the client's service to ${owner.network} (a dual-stack network)`);
  else if (!tv) stop(`not read: ${unreadable.get(node) ?? 'not asked for'}`, `check the agent on ${node} runs (meshnet node ls)`);
  else if (!tv.lb6 && tv.lb?.backend === 'ipvs') return viaIpvs(facts, views, unreadable, t, { owner, src, clientName, node, lb: tv.lb }, base);
  else if (!tv.lb6) stop(`${clientName} has no ip6 meshnet6 table: the connection goes to an address nobody holds`, `the agent on ${node} writes it on its next pass; check it runs and read its log`);
  if (problems.length > 0 || !owner || !src || !tv?.lb6) return conclude({ ...base, hops: [hop({ kind: 'task-lb', node, namespace: clientName, title: `${clientName} -> ${t.vip}`, details: [], problems })], backends: [] });

  const verdict = traceIp6(tv.lb6, { saddr: src, daddr: t.vip, protocol: t.protocol, dport: t.port });
  const details = [`from ${src}: ip6 meshnet6 ${verdict.kind === 'dnat' ? `DNAT to ${verdict.targets.join(', ')}` : verdict.kind === 'reject' ? 'rejects (no live backend)' : 'has no rule for it'}`];
  if (verdict.kind === 'reject') stop(`${owner.service.name} has no live v6 backend`, `start or repair the tasks of ${owner.service.name} (meshnet task ls ${owner.service.name})`);
  if (verdict.kind === 'accept') stop(`${clientName}'s ip6 meshnet6 table has no rule for ${t.vip} ${t.protocol}`, `the agent on ${node} writes it on its next pass; check it runs and read its log`);
  const hops = [hop({ kind: 'task-lb', node, namespace: clientName, title: `${clientName} -> ${t.vip} (v6)`, details, problems })];
  const targets = verdict.kind === 'dnat' ? verdict.targets : [];
  const backends = targets.map((text) => backend6(facts, views, unreadable, owner.network, text, t, 1 / targets.length));
  return conclude({ ...base, hops, backends });
}

/** On an IPVS node the v6 VIP is an AF_INET6 IPVS service in the client task: its hop, then each destination. */
function viaIpvs(
  facts: ClusterFacts,
  views: Views,
  unreadable: ReadonlyMap<string, string>,
  t: VipTarget,
  c: { owner: NonNullable<ReturnType<typeof vip6Owner>>; src: string; clientName: string; node: string; lb: LbTableView },
  base: { target: string; service?: string; idleTasks: never[] },
): Explanation {
  const labelOf = (address: string) => {
    const task = facts.tasks.find((x) => x.addresses[c.owner.network]?.ip6 === address);
    return task ? `${taskName(task)} on ${task.node}` : 'no task has this address';
  };
  const lb = lbHop({
    kind: 'task-lb',
    node: c.node,
    namespace: c.clientName,
    lb: c.lb,
    match: (s) => s.frontend.kind === 'vip' && s.frontend.address === t.vip && s.frontend.protocol === t.protocol && (s.frontend.port === t.port || s.frontend.port === 0),
    packet: { src: c.src, dst: t.vip, proto: t.protocol, dport: t.port, path: 'output' },
    missing: {
      message: `${c.clientName} has no IPVS service for ${t.vip} ${t.protocol}: the connection goes to an address nobody holds`,
      fix: `the agent on ${c.node} writes it on its next pass; check it runs (meshnet node ls) and read its log`,
    },
    label: labelOf,
    noBackendFix: `start or repair the tasks of ${c.owner.service.name} (meshnet task ls ${c.owner.service.name})`,
  });
  lb.hop.details.unshift(`from ${c.src}`);
  const backends = lb.chosen.filter((b) => b.weight > 0).map((b) => backend6(facts, views, unreadable, c.owner.network, `[${b.address}]:${b.port}`, t, b.share));
  return conclude({ ...base, hops: [lb.hop], backends });
}

/** One DNAT target ([addr]:port or addr): the task holding it and whether it listens. */
function backend6(facts: ClusterFacts, views: Views, unreadable: ReadonlyMap<string, string>, network: string, text: string, t: VipTarget, share: number): BackendBranch {
  const m = /^\[(.+)\]:(\d+)$/.exec(text);
  const address = m ? m[1]! : text;
  const port = m ? Number(m[2]) : t.port;
  const task = facts.tasks.find((x) => x.addresses[network]?.ip6 === address);
  const branch: BackendBranch = { address, port, weight: 1, share, hops: [], delivered: false };
  if (!task) {
    const problems: Problem[] = [{ severity: 'stop', node: '?', namespace: '?', message: `no task holds ${address}`, fix: 'the table is stale: the agent rewrites it on its next pass' }];
    branch.hops.push(hop({ kind: 'task', node: '?', namespace: '?', title: address, details: [], problems }));
    return branch;
  }
  const name = taskName(task);
  Object.assign(branch, { task: name, node: task.node });
  const tv = views.get(task.node)?.tasks.find((x) => x.taskId === task.id);
  const problems: Problem[] = [];
  if (!tv) problems.push({ severity: 'warn', node: task.node, namespace: name, message: `not read: ${unreadable.get(task.node) ?? 'not asked for'}`, fix: `check the agent on ${task.node} runs` });
  else if (!tv.listening[t.protocol].includes(port)) problems.push({ severity: 'stop', node: task.node, namespace: name, message: `nothing in ${name} listens on ${t.protocol} ${port}`, fix: `make the program of ${task.service} listen on [::]:${port} (or on ${address})` });
  branch.hops.push(hop({ kind: 'task', node: task.node, namespace: name, title: `${name} [${address}]:${port}`, details: tv ? [`listening ${t.protocol}: ${tv.listening[t.protocol].join(' ') || 'none'}`] : [], problems }));
  branch.delivered = problems.every((p) => p.severity !== 'stop') && tv !== undefined;
  return branch;
}
