import { INGRESS_NETWORK } from '../model/ipam.js';
import { HOSTPORT_CHAIN, INGRESS_CHAIN } from '../mesh/iptables-render.js';
import { INGRESS_SBOX } from '../agent/node-plan.js';
import type { PortRecord, ServiceRecord } from '../model/records.js';
import { conclude, countersText, hop, type Explanation, type Hop, type Problem } from './explanation.js';
import { linkForSubnet, linkText, linkWithAddress, taskName, type ClusterFacts, type Views } from './cluster-facts.js';
import { dnatTarget, jumpsTo, matchesPort } from './iptables-counters.js';
import { backendBranch, type BackendContext } from './backend-hops.js';
import { lbHop } from './lb-hop.js';
import { idleTasks } from './idle-tasks.js';
import type { HostView, SboxView } from './kernel-view.js';
import { explainSbox6, fromLocal6, hostViewV6, sboxViewV6 } from './explain-published6.js';
import { hostPortBackend } from './host-port-task.js';

/** A published port on one node, as a client reaches it. */
export interface PublishedTarget {
  node: string;
  protocol: 'tcp' | 'udp';
  port: number;
  /** The node's v6 address the client connects to: the path through ip6tables and the sandbox's ip6 meshnet6. */
  address6?: string;
  /** The client's address (--from); a loopback or local address means the node itself (curl localhost:P). */
  from?: string;
  /** Bytes of IP packet to check against the MTUs on the way (--size). */
  packetSize?: number;
}

/** A stand-in client address when none is given (TEST-NET-3): only hash schedulers care which. */
const ANY_CLIENT = '203.0.113.10';

/** The service publishing `port/protocol` and how, if any. */
export function publisherOf(facts: ClusterFacts, protocol: string, port: number): { service: ServiceRecord; spec: PortRecord } | null {
  for (const service of facts.services) {
    const spec = service.ports.find((p) => p.published === port && p.protocol === protocol);
    if (spec) return { service, spec };
  }
  return null;
}

/** address:port, with a v6 address bracketed as URLs and ip6tables write it. */
const addressPort = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

/** True when `from` is the node itself: loopback, or one of its host addresses. */
function fromLocal(host: HostView | undefined, from: string | undefined): boolean {
  if (!from) return false;
  if (from.startsWith('127.')) return true;
  return !!host && !!linkWithAddress(host.links, from);
}

/**
 * Pure: the path of a new connection to a published port on one node, hop by hop, from the
 * node's DOCKER-INGRESS DNAT over the gwbridge into ingress_sbox, through its balancer, across
 * the ingress overlay to each backend task, its REDIRECT and its listening socket.
 */
export function explainPublished(facts: ClusterFacts, views: Views, unreadable: ReadonlyMap<string, string>, t: PublishedTarget): Explanation {
  const target = t.address6 ? `[${t.address6}]:${t.port}/${t.protocol} (${t.node})` : `${t.node}:${t.port}/${t.protocol}`;
  const view = views.get(t.node);
  const pub = publisherOf(facts, t.protocol, t.port);
  const hops: Hop[] = [];
  const base = { target, ...(pub ? { service: pub.service.name } : {}), backends: [], idleTasks: [] };
  if (!view?.host) {
    hops.push(hop({ kind: 'host-dnat', node: t.node, namespace: 'host', title: `not read: ${unreadable.get(t.node) ?? 'not asked for'}`, details: [], problems: [{ severity: 'stop', node: t.node, namespace: 'host', message: `the kernel of ${t.node} could not be read: ${unreadable.get(t.node) ?? 'unknown reason'}`, fix: `run meshnet explain on ${t.node}` }] }));
    return conclude({ ...base, hops });
  }
  // The v6 path reads the same hops from the v6 side of each namespace.
  const host = t.address6 ? hostViewV6(view.host) : view.host;
  const local = t.address6 ? fromLocal6(host, t.from) : fromLocal(host, t.from);
  if (pub?.spec.mode === 'host') {
    const hp = hostPortHop(facts, host, t, pub, local);
    const to = hp.to && hp.hop.status !== 'stop' ? [hostPortBackend(facts, views, t.node, pub.service.name, t.protocol, { address: hp.to.address, port: hp.to.port ?? t.port })] : [];
    return conclude({ ...base, hops: [hp.hop], backends: to });
  }
  const dnat = hostDnatHop(facts, host, t, pub, local);
  hops.push(dnat.hop);
  if (!pub || !dnat.sboxAddress) return conclude({ ...base, hops });

  const sbox = t.address6 ? sboxViewV6(view.sbox) : view.sbox;
  hops.push(gwbridgeHop(t.node, host, sbox, dnat.sboxAddress));
  if (t.address6) return explainSbox6({ facts, views, unreadable, t, pub, sbox, sboxAddress: dnat.sboxAddress }, base, hops);
  const labelOf = (address: string) => {
    const task = facts.tasks.find((x) => x.addresses[INGRESS_NETWORK]?.ip === address);
    return task ? `${taskName(task)} on ${task.node}` : 'no task has this address';
  };
  const lb = lbHop({
    kind: 'sbox-lb',
    node: t.node,
    namespace: INGRESS_SBOX,
    lb: sbox?.lb ?? null,
    match: (s) => s.frontend.kind === 'fwmark' && s.frontend.protocol === t.protocol && s.frontend.port === t.port && (s.frontend.address === undefined || s.frontend.address === dnat.sboxAddress),
    packet: {
      src: local ? dnat.sboxGateway ?? ANY_CLIENT : (t.from ?? ANY_CLIENT),
      dst: dnat.sboxAddress,
      proto: t.protocol,
      dport: t.port,
      path: 'prerouting',
      localAddresses: (sbox?.links ?? []).flatMap((l) => l.addresses.map((a) => a.split('/')[0]!)),
    },
    missing: {
      message: `${INGRESS_SBOX} on ${t.node} has no load-balancing entry for ${t.port}/${t.protocol}: the packet is not marked and goes nowhere`,
      fix: `the agent on ${t.node} writes it on its next pass; check it runs (meshnet node ls) and read its log`,
    },
    conntrack: (sbox?.conntrack ?? []).filter((c) => c.protocol === t.protocol && c.dport === t.port),
    label: labelOf,
    noBackendFix: `start or repair the tasks of ${pub.service.name} (see below and meshnet task ls ${pub.service.name}): a task becomes a backend once it runs and listens on ${pub.spec.target}/${t.protocol}`,
    // policy=local keeps the client's address (the tasks answer through their return route); cluster rewrites it.
    expectSourceNat: pub.spec.policy !== 'local',
  });
  hops.push(lb.hop);
  if (!sbox?.exists || !lb.service) return conclude({ ...base, hops });

  const network = facts.networks.find((n) => n.name === INGRESS_NETWORK);
  const endpoint = facts.ingressEndpoints.find((e) => e.node === t.node);
  const backends = [];
  if (network && endpoint) {
    const ctx: BackendContext = {
      facts,
      views,
      unreadable,
      fromNode: t.node,
      network,
      sender: { ip: endpoint.ip, mac: endpoint.mac, label: INGRESS_SBOX },
      protocol: t.protocol,
      redirect: { port: t.port, targetPort: pub.spec.target },
      ...(t.packetSize !== undefined ? { packetSize: t.packetSize } : {}),
    };
    for (const b of [...lb.chosen].sort((x, y) => y.weight - x.weight || x.address.localeCompare(y.address))) backends.push(backendBranch(ctx, b));
  }
  const idle = idleTasks(facts, views, pub.service, INGRESS_NETWORK, new Set(lb.chosen.map((c) => c.address)), { protocol: t.protocol, port: pub.spec.target });
  for (const task of facts.tasks.filter((x) => x.service === pub.service.name && x.state === 'running' && x.desiredState === 'running')) {
    const ip = task.addresses[INGRESS_NETWORK]?.ip;
    if (ip && !lb.chosen.some((c) => c.address === ip) && facts.nodes.some((n) => n.id === task.node)) {
      idle.problems.push({ severity: 'warn', node: t.node, namespace: INGRESS_SBOX, message: `${taskName(task)} on ${task.node} runs but is not a backend in ${INGRESS_SBOX} on ${t.node}`, fix: `the agent on ${t.node} adds it on its next pass; if it does not, read that agent's log` });
    }
  }
  return conclude({ ...base, hops, backends, idleTasks: idle.idle }, idle.problems);
}

interface DnatOutcome {
  hop: Hop;
  sboxAddress: string | null;
  sboxGateway: string | null;
}

/** nat PREROUTING (or OUTPUT for the node itself) -> DOCKER-INGRESS -> DNAT to the ingress sandbox, with counters. */
function hostDnatHop(facts: ClusterFacts, host: HostView, t: PublishedTarget, pub: ReturnType<typeof publisherOf>, local: boolean): DnatOutcome {
  const problems: Problem[] = [];
  const details: string[] = [];
  const nat = host.iptables['nat'] ?? {};
  const entry = local ? 'OUTPUT' : 'PREROUTING';
  const jump = (nat[entry] ?? []).find((r) => jumpsTo(r.rule, INGRESS_CHAIN));
  const rule = (nat[INGRESS_CHAIN] ?? []).find((r) => matchesPort(r.rule, t.protocol, t.port) && dnatTarget(r.rule));
  if (jump) details.push(`nat ${entry}: ${jump.rule}   [${countersText(jump)}]`);
  if (rule) details.push(`nat ${INGRESS_CHAIN}: ${rule.rule}   [${countersText(rule)}]`);
  const target = rule ? dnatTarget(rule.rule) : null;
  const filter = (host.iptables['filter']?.[INGRESS_CHAIN] ?? []).find((r) => matchesPort(r.rule, t.protocol, t.port) && r.rule.includes('-j ACCEPT') && r.rule.startsWith('-d '));
  if (filter && !local) details.push(`filter ${INGRESS_CHAIN}: ${filter.rule}   [${countersText(filter)}]`);
  const at = (message: string, fix: string, severity: Problem['severity'] = 'stop') => problems.push({ severity, node: t.node, namespace: 'host', message, fix });
  const agentFix = `the agent on ${t.node} writes it on its next pass (rules changed by hand on the host are repaired within 10 resyncs, 5 minutes by default); check it runs (meshnet node ls) and read its log`;
  if (!pub) {
    at(`no service publishes ${t.port}/${t.protocol}${rule ? ` (a stale ${INGRESS_CHAIN} rule is left: the agent removes it)` : ''}`, `publish it: meshnet service update SERVICE --publish-add ${t.port}:TARGET${t.protocol === 'udp' ? '/udp' : ''} (or service create ... -p ${t.port}:TARGET)`);
  } else if (!rule) {
    const localTask = facts.tasks.some((x) => x.service === pub.service.name && x.node === t.node && x.state === 'running' && x.desiredState === 'running');
    if (pub.spec.policy === 'local' && !localTask) {
      at(`${pub.service.name} publishes ${t.port}/${t.protocol} with policy=local and no task of it runs on ${t.node}, so ${t.node} does not take the port (as designed)`, `send the traffic to a node that runs a task of ${pub.service.name} (its health port says which), or publish with policy=cluster`);
    } else {
      at(`nat ${INGRESS_CHAIN} on ${t.node} has no DNAT rule for ${t.port}/${t.protocol}: the packet reaches no sandbox`, agentFix);
    }
  } else if (!jump) {
    at(`nat ${entry} on ${t.node} does not jump to ${INGRESS_CHAIN}: ${local ? 'the node\'s own connections' : 'arriving packets'} skip it`, agentFix);
  } else if (!local && !filter) {
    at(`filter ${INGRESS_CHAIN} on ${t.node} does not accept ${t.port}/${t.protocol} towards the sandbox: FORWARD may drop it`, agentFix, 'warn');
  }
  if (target && target.port !== null && target.port !== t.port) at(`the DNAT sends ${t.port} to port ${target.port}; the sandbox balances ${t.port}`, agentFix);
  const title = target ? `${t.protocol} ${t.port} -> DNAT ${addressPort(target.address, target.port ?? t.port)}${local ? ' (from the node itself)' : ''}` : `${t.protocol} ${t.port}: no DNAT`;
  const gw = target ? linkForSubnet(host.links, target.address) : undefined;
  const gateway = gw?.addresses.find((a) => a.split('/')[0] !== target?.address)?.split('/')[0] ?? null;
  return { hop: hop({ kind: 'host-dnat', node: t.node, namespace: 'host', title, details, problems }), sboxAddress: target?.address ?? null, sboxGateway: gateway };
}

/** The host bridge towards the sandbox, and the sandbox's leg on it. */
function gwbridgeHop(node: string, host: HostView, sbox: SboxView | undefined, sboxAddress: string): Hop {
  const problems: Problem[] = [];
  const details: string[] = [];
  const at = (ns: string, message: string, fix: string) => problems.push({ severity: 'stop', node, namespace: ns, message, fix });
  const agentFix = `the agent on ${node} recreates it on its next pass; check it runs (meshnet node ls) and read its log`;
  const bridge = linkForSubnet(host.links, sboxAddress);
  if (bridge) {
    details.push(`host ${linkText(bridge)}`);
    if (!bridge.up) at('host', `the gwbridge ${bridge.name} on ${node} is down`, `ip link set ${bridge.name} up (the agent also does on its next full pass)`);
  } else at('host', `no host bridge on ${node} has a subnet holding ${sboxAddress}`, agentFix);
  if (!sbox || !sbox.exists) {
    at(INGRESS_SBOX, `${INGRESS_SBOX} is missing on ${node}`, agentFix);
    return hop({ kind: 'gwbridge', node, namespace: INGRESS_SBOX, title: `${bridge?.name ?? 'gwbridge'} -> ${INGRESS_SBOX} missing`, details, problems });
  }
  const leg = linkWithAddress(sbox.links, sboxAddress);
  if (leg) {
    details.push(`${INGRESS_SBOX} ${linkText(leg)}`);
    if (!leg.up) at(INGRESS_SBOX, `${leg.name} of ${INGRESS_SBOX} on ${node} is down`, agentFix);
  } else at(INGRESS_SBOX, `${INGRESS_SBOX} on ${node} does not hold ${sboxAddress}, the address DOCKER-INGRESS DNATs to`, agentFix);
  const ingress = sbox.links.find((l) => l !== leg && l.name !== 'lo' && l.addresses.length > 0);
  if (ingress) details.push(`${INGRESS_SBOX} ${linkText(ingress)} (ingress network)`);
  return hop({ kind: 'gwbridge', node, namespace: INGRESS_SBOX, title: `${bridge?.name ?? 'gwbridge'} -> ${INGRESS_SBOX} ${sboxAddress}`, details, problems });
}

/** mode=host: nat MESHNET-HOSTPORT DNATs straight to a local task's gwbridge address. */
function hostPortHop(facts: ClusterFacts, host: HostView, t: PublishedTarget, pub: NonNullable<ReturnType<typeof publisherOf>>, local: boolean): { hop: Hop; to: ReturnType<typeof dnatTarget> } {
  const problems: Problem[] = [];
  const details: string[] = [];
  const nat = host.iptables['nat'] ?? {};
  const entry = local ? 'OUTPUT' : 'PREROUTING';
  const jump = (nat[entry] ?? []).find((r) => jumpsTo(r.rule, HOSTPORT_CHAIN));
  const rule = (nat[HOSTPORT_CHAIN] ?? []).find((r) => matchesPort(r.rule, t.protocol, t.port));
  if (jump) details.push(`nat ${entry}: ${jump.rule}   [${countersText(jump)}]`);
  if (rule) details.push(`nat ${HOSTPORT_CHAIN}: ${rule.rule}   [${countersText(rule)}]`);
  const runsHere = facts.tasks.some((x) => x.service === pub.service.name && x.node === t.node && x.state === 'running');
  if (!rule) {
    problems.push(
      runsHere
        ? { severity: 'stop', node: t.node, namespace: 'host', message: `nat ${HOSTPORT_CHAIN} on ${t.node} has no DNAT for ${t.port}/${t.protocol}`, fix: `the agent on ${t.node} writes it on its next pass; read its log` }
        : { severity: 'stop', node: t.node, namespace: 'host', message: `${pub.service.name} publishes ${t.port}/${t.protocol} in mode=host and no task of it runs on ${t.node}: only nodes running a task take the port`, fix: `send the traffic to a node that runs a task of ${pub.service.name} (meshnet task ls), or publish in ingress mode` },
    );
  } else if (!jump) {
    problems.push({ severity: 'stop', node: t.node, namespace: 'host', message: `nat ${entry} on ${t.node} does not jump to ${HOSTPORT_CHAIN}`, fix: `the agent on ${t.node} writes it on its next pass` });
  }
  const to = rule ? dnatTarget(rule.rule) : null;
  return { hop: hop({ kind: 'host-port', node: t.node, namespace: 'host', title: `${t.protocol} ${t.port} (mode=host) -> ${to ? `DNAT ${addressPort(to.address, to.port ?? t.port)}` : 'no DNAT'}`, details, problems }), to };
}
