import type { NetworkRecord, TaskRecord } from '../model/records.js';
import { overlayNetnsName } from '../overlay/overlay-state.js';
import { vxlanOverhead } from '../overlay/underlay-address.js';
import { TASK_CHAIN } from '../mesh/iptables-render.js';
import { countersText, hop, type BackendBranch, type Hop, type Problem } from './explanation.js';
import { inNs, linkText, linkWithAddress, taskName, type ClusterFacts, type Views } from './cluster-facts.js';
import { jumpsTo, matchesPort } from './iptables-counters.js';
import type { OverlayView, TaskView } from './kernel-view.js';

/** What the path after the balancer needs to know: who sends, over which network, to which port. */
export interface BackendContext {
  facts: ClusterFacts;
  views: Views;
  /** Nodes whose kernel could not be read, and why. */
  unreadable: ReadonlyMap<string, string>;
  /** The node whose balancer picked the backend (the ingress sandbox's or the client task's). */
  fromNode: string;
  network: NetworkRecord;
  /** The sending endpoint on that network, which replies must reach back. */
  sender: { ip: string; mac: string; label: string };
  protocol: 'tcp' | 'udp';
  /** Published ports: the task REDIRECTs `port` to `targetPort`. */
  redirect?: { port: number; targetPort: number };
  /** Bytes of IP packet to check against every MTU on the way (--size). */
  packetSize?: number;
}

/** The balancer's choice, as traced. */
export interface ChosenBackend {
  address: string;
  port: number;
  weight: number;
  share: number;
}

/** A hop on a node whose kernel was not read: unchecked, which the operator must know. */
const unreadHop = (kind: Hop['kind'], node: string, namespace: string, why: string): Hop =>
  hop({ kind, node, namespace, title: `not read: ${why}`, details: [], problems: [{ severity: 'warn', node, namespace, message: `${namespace} on ${node} was not checked: ${why}`, fix: `run meshnet explain on ${node} itself` }] });

/** The rest of the path for one backend: overlay to its host, the way back, and the task itself. */
export function backendBranch(ctx: BackendContext, b: ChosenBackend): BackendBranch {
  const task = ctx.facts.tasks.find((t) => t.addresses[ctx.network.name]?.ip === b.address);
  const branch: BackendBranch = { address: b.address, port: b.port, weight: b.weight, share: b.share, hops: [], delivered: false };
  if (!task) {
    const p: Problem = {
      severity: 'stop',
      node: ctx.fromNode,
      namespace: ctx.sender.label,
      message: `backend ${b.address} is no task's address on ${ctx.network.name}: a stale entry, its connections go nowhere`,
      fix: `the agent on ${ctx.fromNode} removes it on its next pass; if it stays, check that agent runs (meshnet node ls) and read its log`,
    };
    branch.hops.push(hop({ kind: 'overlay', node: ctx.fromNode, namespace: overlayNetnsName(ctx.network.name), title: `${b.address}: unknown backend`, details: [], problems: [p] }));
    return branch;
  }
  branch.task = taskName(task);
  branch.node = task.node;
  branch.hops.push(overlayHop(ctx, task));
  if (task.node !== ctx.fromNode) branch.hops.push(returnHop(ctx, task));
  branch.hops.push(taskHop(ctx, task, b));
  branch.delivered = b.weight > 0 && branch.hops.every((h) => h.status !== 'stop');
  return branch;
}

/** The network's overlay namespace name, and its view on `node` when it was read. */
function overlayOf(ctx: BackendContext, node: string): { ns: string; ov: OverlayView | undefined } {
  return { ns: overlayNetnsName(ctx.network.name), ov: ctx.views.get(node)?.overlays.find((o) => o.network === ctx.network.name) };
}

/** On the sending node: the overlay namespace, VNI, and the FDB and neighbour entries to the task's VTEP. */
function overlayHop(ctx: BackendContext, task: TaskRecord): Hop {
  const node = ctx.fromNode;
  const { ns, ov } = overlayOf(ctx, node);
  if (!ov) return unreadHop('overlay', node, ns, ctx.unreadable.get(node) ?? 'not asked for');
  const addr = task.addresses[ctx.network.name]!;
  const problems: Problem[] = [];
  const details: string[] = [];
  const at = (message: string, fix: string, severity: Problem['severity'] = 'stop') => problems.push({ severity, node, namespace: ns, message, fix });
  if (!ov.exists) {
    at(`the overlay namespace ${ns} is missing on ${node}`, `the agent on ${node} recreates it on its next pass; check that it runs (meshnet node ls) and read its log`);
    return hop({ kind: 'overlay', node, namespace: ns, title: `${ns} missing`, details, problems });
  }
  const vx = ov.links.find((l) => l.name === 'vxlan0');
  const br = ov.links.find((l) => l.name === 'br0');
  if (br) details.push(linkText(br));
  if (vx) details.push(`${linkText(vx)} vni ${vx.vxlan?.vni ?? '?'}`);
  if (!vx) at(`${ns} on ${node} has no vxlan0`, `the agent on ${node} recreates it on its next pass`);
  else {
    if (!vx.up) at(`vxlan0 in ${ns} on ${node} is down`, `${inNs(ov.path)}ip link set vxlan0 up (the agent also does on its next full pass)`);
    if (vx.vxlan && vx.vxlan.vni !== ctx.network.vni) at(`vxlan0 in ${ns} on ${node} carries VNI ${vx.vxlan.vni}, the network has ${ctx.network.vni}: peers drop its frames`, `remove ${ns} on ${node} (${inNs(ov.path)}ip link del vxlan0) and let the agent recreate it`);
    mtuChecks(ctx, node, ns, vx.mtu, at);
  }
  const title = `${ctx.network.name} vni ${ctx.network.vni}`;
  if (task.node === node) {
    details.push(`${taskName(task)} (${addr.ip}) is local: bridged on br0`);
    return hop({ kind: 'overlay', node, namespace: ns, title: `${title}: local task`, details, problems });
  }
  const vtep = ctx.facts.nodes.find((n) => n.id === task.node)?.underlayIp;
  entryChecks(ov, { ip: addr.ip, mac: addr.mac, label: `${taskName(task)} on ${task.node}` }, vtep, task.node, details, at);
  return hop({ kind: 'overlay', node, namespace: ns, title: `${title} -> ${task.node} (VTEP ${vtep ?? 'unknown'})`, details, problems });
}

/** The FDB and neighbour entries that carry frames for `peer` to `vtep`. */
function entryChecks(
  ov: OverlayView,
  peer: { ip: string; mac: string; label: string },
  vtep: string | undefined,
  peerNode: string,
  details: string[],
  at: (message: string, fix: string) => void,
): void {
  const mac = peer.mac.toLowerCase();
  const fdb = ov.fdb.filter((f) => f.mac.toLowerCase() === mac);
  const neigh = ov.neighbors.find((n) => n.ip === peer.ip);
  const fixFdb = `the agent restores it within 10 resyncs (5 minutes by default); at once: ${inNs(ov.path)}bridge fdb replace ${mac} dev vxlan0 dst ${vtep ?? '<VTEP>'} self permanent`;
  // Entries without a destination are the bridge's own (learned on the vxlan0 port): they carry no frame to a VTEP.
  const toVtep = fdb.filter((f) => f.dst !== undefined);
  for (const f of fdb) details.push(f.dst ? `fdb ${f.mac} dst ${f.dst}${f.permanent ? ' permanent' : ''}` : `fdb ${f.mac} (bridge entry, no VTEP)`);
  if (toVtep.length === 0) at(`no FDB entry for ${mac} (${peer.label}) on vxlan0: frames to it are sent to no VTEP (learning is off)`, fixFdb);
  else if (vtep && !toVtep.some((f) => f.dst === vtep)) at(`the FDB entry for ${mac} (${peer.label}) points to ${toVtep.map((f) => f.dst).join(', ')}, not to ${peerNode}'s VTEP ${vtep}`, fixFdb);
  const fixNeigh = `the agent restores it on its next full pass; at once: ${inNs(ov.path)}ip neigh replace ${peer.ip} lladdr ${mac} dev vxlan0 nud permanent`;
  if (!neigh) at(`no neighbour entry for ${peer.ip} (${peer.label}) on vxlan0: ARP for it gets no answer`, fixNeigh);
  else {
    details.push(`neigh ${neigh.ip} lladdr ${neigh.mac}${neigh.permanent ? ' permanent' : ''}`);
    if (neigh.mac.toLowerCase() !== mac) at(`the neighbour entry for ${peer.ip} says ${neigh.mac}, the task has ${mac}`, fixNeigh);
  }
}

/** MTU: encapsulated frames must fit the underlay; a packet of --size bytes must fit the overlay. */
function mtuChecks(ctx: BackendContext, node: string, ns: string, overlayMtu: number, at: (m: string, f: string, s?: Problem['severity']) => void): void {
  const underlayIp = ctx.facts.nodes.find((n) => n.id === node)?.underlayIp;
  const underlay = underlayIp ? linkWithAddress(ctx.views.get(node)?.host?.links ?? [], underlayIp) : undefined;
  // VXLAN costs 20 bytes more over a v6 underlay.
  const overhead = vxlanOverhead(underlayIp);
  if (underlay && overlayMtu + overhead > underlay.mtu) {
    at(
      `the overlay MTU ${overlayMtu} in ${ns} plus ${overhead} bytes of VXLAN exceeds ${underlay.name}'s MTU ${underlay.mtu}: full-size packets are dropped`,
      `restart the agent on ${node} so it derives the overlay MTU from the underlay (${underlay.mtu - overhead}), or raise ${underlay.name}'s MTU`,
    );
  }
  if (ctx.packetSize !== undefined && ctx.packetSize > overlayMtu) {
    at(
      `a ${ctx.packetSize}-byte packet exceeds the overlay MTU ${overlayMtu}${ctx.protocol === 'udp' ? ': UDP datagrams that large are fragmented, or dropped with DF set' : ': TCP negotiates a smaller MSS, but a path that blocks ICMP "fragmentation needed" stalls'}`,
      ctx.protocol === 'udp' ? `send datagrams of at most ${overlayMtu - 28} bytes of payload` : 'let ICMP type 3 code 4 through any firewall on the way',
      ctx.protocol === 'udp' ? 'stop' : 'warn',
    );
  }
}

/** On the task's node: the entries that carry replies back to the sender. */
function returnHop(ctx: BackendContext, task: TaskRecord): Hop {
  const node = task.node;
  const { ns, ov } = overlayOf(ctx, node);
  if (!ov) return unreadHop('return-path', node, ns, ctx.unreadable.get(node) ?? 'not asked for');
  const problems: Problem[] = [];
  const details: string[] = [];
  const at = (message: string, fix: string) => problems.push({ severity: 'stop', node, namespace: ns, message: `replies are lost: ${message}`, fix });
  if (!ov.exists) at(`the overlay namespace ${ns} is missing on ${node}`, `the agent on ${node} recreates it on its next pass`);
  else entryChecks(ov, { ...ctx.sender, label: `${ctx.sender.label} on ${ctx.fromNode}` }, ctx.facts.nodes.find((n) => n.id === ctx.fromNode)?.underlayIp, ctx.fromNode, details, at);
  return hop({ kind: 'return-path', node, namespace: ns, title: `back to ${ctx.sender.label} on ${ctx.fromNode}`, details, problems });
}

/** Inside the task: its interface, the REDIRECT of a published port, and whether a process listens. */
function taskHop(ctx: BackendContext, task: TaskRecord, b: ChosenBackend): Hop {
  const name = taskName(task);
  const node = task.node;
  const view = ctx.views.get(node);
  const tv: TaskView | undefined = view?.tasks.find((t) => t.taskId === task.id);
  if (!view || !tv) return unreadHop('task', node, name, ctx.unreadable.get(node) ?? 'not asked for');
  const problems: Problem[] = [];
  const details: string[] = [`state ${task.state}, desired ${task.desiredState}${task.restarts ? `, ${task.restarts} restarts` : ''}`];
  const at = (message: string, fix: string, severity: Problem['severity'] = 'stop') => problems.push({ severity, node, namespace: name, message, fix });
  if (!tv.exists) {
    at(`the namespace of ${name} is missing on ${node}`, `the agent on ${node} recreates the task on its next pass; see meshnet task ls`);
    return hop({ kind: 'task', node, namespace: name, title: `${name} missing`, details, problems });
  }
  const ip = task.addresses[ctx.network.name]!.ip;
  const itf = linkWithAddress(tv.links, ip);
  if (itf) details.push(linkText(itf));
  else at(`${name} has no interface with ${ip}`, `the agent on ${node} wires it on its next pass; if not, remove the task (meshnet service scale) so it is placed again`);
  if (itf && !itf.up) at(`${itf.name} of ${name} is down`, `${inNs(tv.path)}ip link set ${itf.name} up`);
  let port = b.port;
  if (ctx.redirect) {
    const { port: published, targetPort } = ctx.redirect;
    const jump = (tv.nat['PREROUTING'] ?? []).find((r) => jumpsTo(r.rule, TASK_CHAIN));
    const rule = (tv.nat[TASK_CHAIN] ?? []).find((r) => matchesPort(r.rule, ctx.protocol, published) && r.rule.includes(`-d ${ip}/32`));
    if (jump) details.push(`nat PREROUTING: ${jump.rule}   [${countersText(jump)}]`);
    if (rule) details.push(`nat ${TASK_CHAIN}: ${rule.rule}   [${countersText(rule)}]`);
    const fix = `the agent on ${node} writes it on its next pass (rules changed by hand in a task's namespace are repaired within the hour; restarting the agent repairs them at once); check it runs: meshnet node ls`;
    if (!jump) at(`nat PREROUTING of ${name} does not jump to ${TASK_CHAIN}`, fix);
    if (!rule) at(`${name} has no REDIRECT of ${published}/${ctx.protocol} to ${targetPort}`, fix);
    const to = rule ? /--to-ports (\d+)/.exec(rule.rule)?.[1] : undefined;
    port = to ? Number(to) : targetPort;
    if (to && Number(to) !== targetPort) at(`${name} REDIRECTs ${published} to ${to}, the service's target port is ${targetPort}`, fix);
  }
  const listening = tv.listening[ctx.protocol];
  const others = listening.length ? `it ${ctx.protocol === 'tcp' ? 'listens' : 'has sockets'} on ${ctx.protocol} ${listening.join(', ')}` : `it has no ${ctx.protocol} socket at all`;
  if (listening.includes(port)) details.push(`a process ${ctx.protocol === 'tcp' ? 'listens' : 'is bound'} on ${ctx.protocol} ${port}`);
  else {
    at(
      `nothing listens on ${ctx.protocol} ${port} in ${name} (${others}): ${ctx.protocol === 'tcp' ? 'the connection is reset' : 'the datagram is refused'}`,
      ctx.redirect
        ? `make the service's command listen on ${port}, or publish the port it serves: meshnet service update ${task.service} --publish-rm ${ctx.redirect.port}${ctx.protocol === 'udp' ? '/udp' : ''} --publish-add ${ctx.redirect.port}:${listening[0] ?? '<PORT>'}${ctx.protocol === 'udp' ? '/udp' : ''}`
        : `make the service's command listen on ${port} (meshnet service inspect ${task.service} shows its command)`,
    );
  }
  const overlay = view.overlays.find((o) => o.network === ctx.network.name)?.links.find((l) => l.name === 'vxlan0');
  if (itf && overlay && itf.mtu > overlay.mtu) {
    at(`${itf.name} of ${name} has MTU ${itf.mtu}, the overlay carries ${overlay.mtu}: its larger packets are dropped on the bridge`, `the agent sets the overlay MTU on the task's interface when it wires it: recreate the task (scale down and up)`, 'warn');
  }
  if (ctx.packetSize !== undefined && itf && ctx.packetSize > itf.mtu) {
    at(`a ${ctx.packetSize}-byte packet exceeds ${name}'s ${itf.name} MTU ${itf.mtu}`, `send packets of at most ${itf.mtu} bytes`, ctx.protocol === 'udp' ? 'stop' : 'warn');
  }
  return hop({ kind: 'task', node, namespace: name, title: `${name} on ${node}${ctx.redirect ? `: REDIRECT ${ctx.redirect.port} -> ${port}` : ''}, port ${port}`, details, problems });
}
