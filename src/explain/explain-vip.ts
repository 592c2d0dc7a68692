import { conclude, hop, type Explanation, type Hop } from './explanation.js';
import { linkText, linkWithAddress, taskName, type ClusterFacts, type Views } from './cluster-facts.js';
import { backendBranch, type BackendContext } from './backend-hops.js';
import { lbHop } from './lb-hop.js';
import { idleTasks } from './idle-tasks.js';

/** A service VIP reached from one task (east-west). */
export interface VipTarget {
  vip: string;
  port: number;
  protocol: 'tcp' | 'udp';
  /** The client task (its id). */
  fromTask: string;
  packetSize?: number;
}

/**
 * Pure: the path of a new connection from a task to a service VIP: the task's own balancer
 * (the client DNATs its connections, so backends see its address), then the overlay to each
 * backend task and whether it listens on the port.
 */
export function explainVip(facts: ClusterFacts, views: Views, unreadable: ReadonlyMap<string, string>, t: VipTarget): Explanation {
  const client = facts.tasks.find((x) => x.id === t.fromTask)!;
  const clientName = taskName(client);
  const target = `${t.vip}:${t.port}/${t.protocol} from ${clientName}`;
  const owner = facts.services.find((s) => Object.values(s.vips).includes(t.vip));
  const network = owner ? Object.entries(owner.vips).find(([, ip]) => ip === t.vip)![0] : undefined;
  const base = { target, ...(owner ? { service: owner.name } : {}), backends: [], idleTasks: [] };
  const hops: Hop[] = [];
  const node = client.node;
  const tv = views.get(node)?.tasks.find((x) => x.taskId === client.id);
  const problems = [];
  const details: string[] = [];
  if (!owner || !network) {
    problems.push({ severity: 'stop' as const, node, namespace: clientName, message: `${t.vip} is no service's VIP`, fix: 'see meshnet service inspect SERVICE for its VIPs' });
  } else if (!client.addresses[network]) {
    problems.push({ severity: 'stop' as const, node, namespace: clientName, message: `${clientName} is not on network ${network}, where ${owner.name}'s VIP ${t.vip} lives`, fix: `attach the client's service to ${network} (meshnet service create ... --network ${network})` });
  }
  if (!tv) {
    hops.push(hop({ kind: 'task-lb', node, namespace: clientName, title: `not read: ${unreadable.get(node) ?? 'not asked for'}`, details, problems }));
    return conclude({ ...base, hops });
  }
  if (!tv.exists) problems.push({ severity: 'stop' as const, node, namespace: clientName, message: `the namespace of ${clientName} is missing on ${node}`, fix: 'see meshnet task ls' });
  if (problems.length > 0 || !owner || !network) {
    hops.push(hop({ kind: 'task-lb', node, namespace: clientName, title: `${clientName} -> ${t.vip}`, details, problems }));
    return conclude({ ...base, hops });
  }
  const src = client.addresses[network]!;
  const itf = linkWithAddress(tv.links, src.ip);
  const labelOf = (address: string) => {
    const task = facts.tasks.find((x) => x.addresses[network]?.ip === address);
    return task ? `${taskName(task)} on ${task.node}` : 'no task has this address';
  };
  const lb = lbHop({
    kind: 'task-lb',
    node,
    namespace: clientName,
    lb: tv.lb ?? null,
    match: (s) => s.frontend.kind === 'vip' && s.frontend.address === t.vip && s.frontend.protocol === t.protocol && (s.frontend.port === t.port || s.frontend.port === 0),
    packet: { src: src.ip, dst: t.vip, proto: t.protocol, dport: t.port, path: 'output' },
    missing: {
      message: `${clientName}'s table has no entry for ${t.vip} ${t.protocol}: the connection goes to an address nobody holds`,
      fix: `the agent on ${node} writes it on its next pass; check it runs (meshnet node ls) and read its log`,
    },
    label: labelOf,
    noBackendFix: `start or repair the tasks of ${owner.name} (see below and meshnet task ls ${owner.name}): a task becomes a backend once it runs and listens on its ports`,
  });
  if (itf) lb.hop.details.unshift(`${clientName} ${linkText(itf)}`);
  hops.push(lb.hop);
  if (!lb.service) return conclude({ ...base, hops });
  const net = facts.networks.find((n) => n.name === network);
  const backends = [];
  if (net) {
    const ctx: BackendContext = {
      facts,
      views,
      unreadable,
      fromNode: node,
      network: net,
      sender: { ip: src.ip, mac: src.mac, label: clientName },
      protocol: t.protocol,
      ...(t.packetSize !== undefined ? { packetSize: t.packetSize } : {}),
    };
    for (const b of [...lb.chosen].sort((x, y) => y.weight - x.weight || x.address.localeCompare(y.address))) backends.push(backendBranch(ctx, b));
  }
  const port = lb.chosen[0]?.port ?? t.port;
  const idle = idleTasks(facts, views, owner, network, new Set(lb.chosen.map((c) => c.address)), { protocol: t.protocol, port });
  return conclude({ ...base, hops, backends, idleTasks: idle.idle }, idle.problems);
}
