import { isIPv4 } from 'node:net';
import { canonicalIpv6, isIpv6 } from '../model/ipv6.js';
import { vip6Owner } from './explain-vip6.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import { ExplainInputError } from './explain-errors.js';
import { taskName, type ClusterFacts } from './cluster-facts.js';
import type { KernelViewRequest } from './kernel-view.js';
import { publisherOf, type PublishedTarget } from './explain-published.js';
import type { VipTarget } from './explain-vip.js';

/** What the operator asked about, before it is looked up in the cluster. */
export type ParsedTarget = { kind: 'endpoint'; host: string; port: number; protocol: 'tcp' | 'udp' } | { kind: 'service'; name: string };

/** What explain will trace, resolved against the cluster. */
export type ExplainQuery =
  | { kind: 'published'; targets: PublishedTarget[] }
  | { kind: 'vip'; target: VipTarget }
  | { kind: 'service'; service: string; targets: PublishedTarget[] }
  /** A published port on a host's v6 address, before the node holding that address is found: one candidate per node. */
  | { kind: 'locate6'; address6: string; targets: PublishedTarget[] };

const ENDPOINT = /^([^:/\s]+):(\d{1,5})(?:\/(tcp|udp))?$/;
/** [v6 address]:PORT[/udp], the bracketed form of URLs. */
const ENDPOINT6 = /^\[([0-9a-f:.]+)\]:(\d{1,5})(?:\/(tcp|udp))?$/i;
const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;

/** Parses HOST:PORT[/udp] or SERVICE. Pure; throws ExplainInputError with the accepted forms. */
export function parseTarget(text: string): ParsedTarget {
  const m = ENDPOINT.exec(text.trim()) ?? v6Endpoint(text.trim());
  if (m) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new ExplainInputError(`invalid port ${m[2]} in ${JSON.stringify(text)}: use 1-65535`);
    return { kind: 'endpoint', host: m[1]!, port, protocol: (m[3] ?? 'tcp') as 'tcp' | 'udp' };
  }
  if (NAME.test(text) && !text.includes(':')) return { kind: 'service', name: text };
  throw new ExplainInputError(`cannot read ${JSON.stringify(text)}: give HOST:PORT[/udp] (a node name or address), [HOST_V6]:PORT[/udp] [--node NODE], VIP:PORT[/udp] or [V6VIP]:PORT[/udp] --from TASK, or a service name`);
}

/** The match of [addr]:PORT with the address canonical, so it compares equal to the stored VIP. */
function v6Endpoint(text: string): RegExpExecArray | null {
  const m = ENDPOINT6.exec(text);
  if (!m || !isIpv6(m[1]!)) return null;
  m[1] = canonicalIpv6(m[1]!);
  return m;
}

/** Options of the query: --from, --size and --node. */
export interface QueryOptions {
  from?: string;
  size?: number;
  /** The node whose v6 address a [V6]:PORT target is (otherwise it is looked up on every node). */
  node?: string;
}

/**
 * Resolves a parsed target against the cluster: a node's published port, a VIP from a task, or
 * every published port of a service on every live node. Pure; throws ExplainInputError naming
 * what exists.
 */
export function resolveQuery(parsed: ParsedTarget, facts: ClusterFacts, opts: QueryOptions = {}): ExplainQuery {
  if (opts.size !== undefined && (!Number.isInteger(opts.size) || opts.size < 68 || opts.size > 65535)) {
    throw new ExplainInputError(`invalid --size ${opts.size}: give the IP packet size in bytes, 68-65535`);
  }
  const size = opts.size !== undefined ? { packetSize: opts.size } : {};
  if (parsed.kind === 'service') {
    const svc = facts.services.find((s) => s.name === parsed.name);
    if (!svc) throw new ExplainInputError(`no service named ${parsed.name}: see meshnet service ls`);
    const targets: PublishedTarget[] = [];
    for (const p of svc.ports) {
      const nodes = p.mode === 'host' ? [...new Set(facts.tasks.filter((t) => t.service === svc.name).map((t) => t.node))] : facts.nodes.map((n) => n.id);
      for (const node of nodes.sort()) targets.push({ node, protocol: p.protocol, port: p.published, ...size });
    }
    if (targets.length === 0) {
      const vip = Object.values(svc.vips)[0];
      throw new ExplainInputError(`${svc.name} publishes no port: explain its VIP from a client task instead, meshnet explain ${vip ?? 'VIP'}:PORT --from TASK`);
    }
    return { kind: 'service', service: svc.name, targets };
  }
  const vipOwner = facts.services.find((s) => Object.values(s.vips).includes(parsed.host)) ?? vip6Owner(facts, parsed.host)?.service;
  if (vipOwner && !(isIPv4(parsed.host) && facts.nodes.some((n) => n.underlayIp === parsed.host))) {
    if (!opts.from) throw new ExplainInputError(`${parsed.host} is the VIP of ${vipOwner.name}: say which task connects, with --from TASK (e.g. --from ${firstTaskName(facts)})`);
    const task = findTask(facts, opts.from);
    return { kind: 'vip', target: { vip: parsed.host, port: parsed.port, protocol: parsed.protocol, fromTask: task.id, ...size } };
  }
  if (isIpv6(parsed.host)) return publishedV6(parsed, facts, opts, size);
  if (opts.node !== undefined) throw new ExplainInputError(`--node is for a [V6]:PORT target (a published port on a node's v6 address); ${parsed.host} already names the node`);
  const node = findNode(facts, parsed.host);
  if (!node) {
    throw new ExplainInputError(`${parsed.host} is no live node and no service VIP: give a node name or address (${facts.nodes.map((n) => `${n.id} ${n.underlayIp}`).join(', ') || 'no node is registered'})`);
  }
  if (opts.from !== undefined && !isIPv4(opts.from)) throw new ExplainInputError(`invalid --from ${JSON.stringify(opts.from)} for a published port: give the client's IPv4 address`);
  return { kind: 'published', targets: [{ node: node.id, protocol: parsed.protocol, port: parsed.port, ...(opts.from ? { from: opts.from } : {}), ...size }] };
}

function findNode(facts: ClusterFacts, ref: string): ClusterFacts['nodes'][number] | undefined {
  return facts.nodes.find((n) => n.id === ref || n.name === ref || n.underlayIp === ref);
}

/** [V6]:PORT that is no VIP: a published port on a node's v6 address, on --node or on whichever node holds it. */
function publishedV6(parsed: Extract<ParsedTarget, { kind: 'endpoint' }>, facts: ClusterFacts, opts: QueryOptions, size: { packetSize?: number }): ExplainQuery {
  if (opts.from !== undefined && !isIpv6(opts.from)) {
    throw new ExplainInputError(`${parsed.host} is no service VIP; for a published port on a node's v6 address, --from takes the client's IPv6 address, not ${JSON.stringify(opts.from)}`);
  }
  const base = { protocol: parsed.protocol, port: parsed.port, address6: parsed.host, ...(opts.from !== undefined ? { from: canonicalIpv6(opts.from) } : {}), ...size };
  if (opts.node !== undefined) {
    const node = findNode(facts, opts.node);
    if (!node) throw new ExplainInputError(`--node ${opts.node} is no live node: give one of ${facts.nodes.map((n) => n.id).join(', ') || '(no node is registered)'}`);
    return { kind: 'published', targets: [{ node: node.id, ...base }] };
  }
  if (facts.nodes.length === 0) throw new ExplainInputError(`${parsed.host} is no service VIP and no node is registered to hold it`);
  return { kind: 'locate6', address6: parsed.host, targets: facts.nodes.map((n) => ({ node: n.id, ...base })) };
}

/**
 * Pure: the published query of a locate6 query, on the node whose host holds the v6 address (`held` says which do,
 * from their kernel views). Throws ExplainInputError when none or several do.
 */
export function locatedQuery(q: Extract<ExplainQuery, { kind: 'locate6' }>, held: ReadonlySet<string>): ExplainQuery {
  const on = q.targets.filter((t) => held.has(t.node));
  if (on.length === 1) return { kind: 'published', targets: on };
  const nodes = q.targets.map((t) => t.node).join(', ');
  if (on.length === 0) throw new ExplainInputError(`no node holds ${q.address6} (or its kernel could not be read) and it is no service's v6 VIP: give the node with --node (one of ${nodes})`);
  throw new ExplainInputError(`${q.address6} is on ${on.map((t) => t.node).join(' and ')}: say which with --node`);
}

function firstTaskName(facts: ClusterFacts): string {
  const t = facts.tasks[0];
  return t ? taskName(t) : 'web.1';
}

/** A task by name (web.2), id, or unique id prefix. */
function findTask(facts: ClusterFacts, ref: string): ClusterFacts['tasks'][number] {
  const byName = facts.tasks.filter((t) => taskName(t) === ref && t.desiredState === 'running');
  if (byName.length === 1) return byName[0]!;
  const byId = facts.tasks.filter((t) => t.id === ref || (ref.length >= 4 && t.id.startsWith(ref)));
  if (byId.length === 1) return byId[0]!;
  throw new ExplainInputError(`--from ${ref} names ${byId.length + byName.length > 1 ? 'more than one task' : 'no task'}: give a task name (web.1) or id from meshnet task ls`);
}

/** Pure: what to read on each node for a query. */
export function viewRequests(q: ExplainQuery, facts: ClusterFacts): Map<string, KernelViewRequest> {
  const out = new Map<string, KernelViewRequest>();
  const req = (node: string) => {
    let r = out.get(node);
    if (!r) out.set(node, (r = { overlays: [], tasks: [] }));
    return r;
  };
  const addTasks = (service: string, network: string) => {
    for (const t of facts.tasks.filter((x) => x.service === service && x.addresses[network])) {
      const r = req(t.node);
      r.overlays!.push(network);
      r.tasks!.push({ id: t.id });
    }
  };
  if (q.kind === 'vip') {
    const client = facts.tasks.find((t) => t.id === q.target.fromTask)!;
    const v6 = vip6Owner(facts, q.target.vip);
    const owner = v6?.service ?? facts.services.find((s) => Object.values(s.vips).includes(q.target.vip));
    const network = v6?.network ?? (owner ? Object.entries(owner.vips).find(([, ip]) => ip === q.target.vip)![0] : undefined);
    const r = req(client.node);
    r.host = true;
    r.tasks!.push(v6 ? { id: client.id, lb6: true } : { id: client.id, lb: true });
    if (owner && network) {
      r.overlays!.push(network);
      addTasks(owner.name, network);
    }
  } else if (q.kind === 'locate6') {
    for (const t of q.targets) Object.assign(req(t.node), { host: true, v6: true });
  } else {
    for (const t of q.targets) {
      const r = req(t.node);
      r.host = true;
      r.sbox = true;
      if (t.address6) r.v6 = true;
      r.overlays!.push(INGRESS_NETWORK);
      const pub = publisherOf(facts, t.protocol, t.port);
      if (pub && pub.spec.mode === 'ingress') addTasks(pub.service.name, INGRESS_NETWORK);
      // mode=host: the node's own tasks of the service, to find the one the DNAT reaches.
      if (pub && pub.spec.mode === 'host') for (const x of facts.tasks.filter((x) => x.service === pub.service.name && x.node === t.node)) r.tasks!.push({ id: x.id });
    }
  }
  for (const r of out.values()) {
    r.overlays = [...new Set(r.overlays)].sort();
    const seen = new Map<string, { id: string; lb?: boolean; lb6?: boolean }>();
    for (const t of r.tasks!) seen.set(t.id, { ...seen.get(t.id), ...t });
    r.tasks = [...seen.values()];
  }
  return out;
}
