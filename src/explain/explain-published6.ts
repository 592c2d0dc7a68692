import { INGRESS_NETWORK } from '../model/ipam.js';
import { INGRESS_SBOX } from '../agent/node-plan.js';
import { addressIpv6 } from '../model/dual-stack.js';
import type { PortRecord, ServiceRecord } from '../model/records.js';
import { conclude, hop, type BackendBranch, type Explanation, type Hop, type Problem } from './explanation.js';
import { linksV6, sameIp, taskName, type ClusterFacts, type Views } from './cluster-facts.js';
import { backendBranch, type BackendContext } from './backend-hops.js';
import { idleTasks } from './idle-tasks.js';
import { publishedEntry6, type Slot6 } from './sbox-table6.js';
import type { HostView, SboxView } from './kernel-view.js';
import type { PublishedTarget } from './explain-published.js';

// A published port reached on a host's v6 address: the same hops as v4 (explain-published.ts), read from the v6 side
// of each namespace. The host's DOCKER-INGRESS (or MESHNET-HOSTPORT) is ip6tables', the sandbox balances in its
// `ip6 meshnet6` table straight to the tasks' v6 ingress addresses at the target port (no REDIRECT in the task), and
// the overlay carries the frames as for v4 (same br0, same vxlan0 FDB entries).

/** The host as the v6 path sees it: ip6tables in place of iptables, v6 addresses in place of v4 ones. */
export function hostViewV6(host: HostView): HostView {
  return { ...host, iptables: host.ip6tables ?? {}, links: linksV6(host.links) };
}

/** The sandbox as the v6 path sees it: its links with their v6 addresses. */
export function sboxViewV6(sbox: SboxView | undefined): SboxView | undefined {
  return sbox && { ...sbox, links: linksV6(sbox.links) };
}

/** True when a v6 client address is the host itself (curl -6 on the node). */
export function fromLocal6(host: HostView, from: string | undefined): boolean {
  if (!from) return false;
  return sameIp(from, '::1') || host.links.some((l) => l.addresses.some((a) => sameIp(a.split('/')[0]!, from)));
}

/** What the v6 tail of the path needs: the target, its publisher, the sandbox (v6 view) and where the host DNATs to. */
export interface SboxPath6 {
  facts: ClusterFacts;
  views: Views;
  unreadable: ReadonlyMap<string, string>;
  t: PublishedTarget;
  pub: { service: ServiceRecord; spec: PortRecord };
  sbox: SboxView | undefined;
  /** The sandbox's v6 gwbridge address, the host's DNAT target. */
  sboxAddress: string;
}

/** Pure: the sandbox's v6 balancer and the backends it picks; `hops` are those before it (host DNAT, gwbridge). */
export function explainSbox6(p: SboxPath6, base: Pick<Explanation, 'target' | 'service'>, hops: Hop[]): Explanation {
  const { facts, t, pub, sbox } = p;
  const problems: Problem[] = [];
  const details: string[] = [];
  const stop = (message: string, fix: string) => problems.push({ severity: 'stop', node: t.node, namespace: INGRESS_SBOX, message, fix });
  const agentFix = `the agent on ${t.node} writes it on its next pass; check it runs (meshnet node ls) and read its log`;
  const entry = sbox?.lb6 ? publishedEntry6(sbox.lb6, { address: p.sboxAddress, protocol: t.protocol, port: t.port }) : null;
  const network = facts.networks.find((n) => n.name === INGRESS_NETWORK);
  const taskOf = (ip6: string) => facts.tasks.find((x) => x.addresses[INGRESS_NETWORK] && network && sameIp(addressIpv6(network, x.addresses[INGRESS_NETWORK]) ?? '', ip6));
  // A missing sandbox already stops the gwbridge hop.
  if (!sbox?.exists) return conclude({ ...base, hops, backends: [], idleTasks: [] });
  if (!sbox.lb6) {
    stop(`${INGRESS_SBOX} on ${t.node} has no ip6 meshnet6 table: v6 connections to ${p.sboxAddress} go nowhere`, agentFix);
  } else if (!entry) {
    stop(`${INGRESS_SBOX} on ${t.node} has no ip6 meshnet6 entry for [${p.sboxAddress}]:${t.port}/${t.protocol}: the packet is not balanced and goes nowhere`, agentFix);
  } else {
    details.push(`ip6 meshnet6 dispatch: ${entry.rule}`);
    details.push(entry.snat ? `postrouting: ${entry.snat.rule}` : 'no SNAT: the task sees the client\'s own address (policy=local)');
    if (entry.verdict === 'reject') stop(`ingress6 ${t.port}/${t.protocol} has no backend with a weight above 0: a new connection is refused`, `start or repair the tasks of ${pub.service.name} (meshnet task ls ${pub.service.name}): a task becomes a backend once it runs and listens on ${pub.spec.target}/${t.protocol}`);
  }
  const slots = entry?.slots ?? [];
  const distinct = [...new Map(slots.map((s) => [`${s.address} ${s.port}`, s])).values()];
  const shareOf = (s: Slot6) => slots.filter((x) => sameIp(x.address, s.address) && x.port === s.port).length / slots.length;
  for (const s of distinct) {
    const share = shareOf(s);
    const conns = sbox.conntrack.filter((c) => c.protocol === t.protocol && c.dport === t.port && sameIp(c.dst, p.sboxAddress) && sameIp(c.backend, s.address)).reduce((a, c) => a + c.connections, 0);
    const task = taskOf(s.address);
    details.push(`backend [${s.address}]:${s.port} -> ${Math.round(share * 1000) / 10}% of new connections, ${conns} tracked connection${conns === 1 ? '' : 's'}  (${task ? `${taskName(task)} on ${task.node}` : 'no task has this address'})`);
  }
  const live = entry?.verdict === 'dnat' ? distinct.length : 0;
  hops.push(hop({ kind: 'sbox-lb', node: t.node, namespace: INGRESS_SBOX, title: entry ? `ingress6 ${t.port}/${t.protocol}: ${live} backend${live === 1 ? '' : 's'} selectable, DNAT to the target port` : 'no load-balancing entry', details, problems }));
  if (!entry || !network) return conclude({ ...base, hops, backends: [], idleTasks: [] });

  const endpoint = facts.ingressEndpoints.find((e) => e.node === t.node);
  const backends: BackendBranch[] = [];
  const chosen = new Set<string>();
  for (const s of distinct) {
    const share = shareOf(s);
    const task = taskOf(s.address);
    const v4 = task?.addresses[INGRESS_NETWORK]?.ip;
    if (v4) chosen.add(v4);
    if (!endpoint) continue;
    const ctx: BackendContext = {
      facts,
      views: p.views,
      unreadable: p.unreadable,
      fromNode: t.node,
      network,
      sender: { ip: endpoint.ip, mac: endpoint.mac, label: INGRESS_SBOX },
      protocol: t.protocol,
      ...(t.packetSize !== undefined ? { packetSize: t.packetSize } : {}),
    };
    // The overlay hops are checked on the task's v4 twin: the same MAC behind the same FDB entry carries both.
    const branch = backendBranch(ctx, { address: v4 ?? s.address, port: s.port, weight: 1, share });
    backends.push({ ...branch, address: s.address });
  }
  const idle = idleTasks(facts, p.views, pub.service, INGRESS_NETWORK, chosen, { protocol: t.protocol, port: pub.spec.target });
  return conclude({ ...base, hops, backends, idleTasks: idle.idle }, idle.problems);
}
