import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { L4Protocol, LbBackendTarget, LbTable, Scheduler, VirtualService } from './lb-table.js';

/** A port a service answers on behind its VIP: `port` on the VIP, `targetPort` on the task (default: the same); port 0: every port. */
export interface ServicePortInput {
  protocol: L4Protocol;
  port: number;
  targetPort?: number;
}

/** A port published on every host through the ingress sandbox, balanced as one fwmark service. */
export interface PublishedPortInput {
  protocol: L4Protocol;
  publishedPort: number;
  targetPort: number;
  /** The fwmark allocated for this published port (unique per cluster, 1..0xffffffff). */
  mark: number;
}

/** A service as the load balancer needs it. */
export interface ServiceInput {
  id: string;
  name: string;
  /** dnsrr services get no VIP (clients resolve task addresses directly). */
  endpointMode: 'vip' | 'dnsrr';
  /** networkId -> the service's VIP on that network. */
  vips: Record<string, string>;
  ports: ServicePortInput[];
  scheduler?: Scheduler;
  /** Client-IP affinity: the same client reaches the same task for this long after its last packet. */
  affinityTimeoutSeconds?: number;
  /** Ingress-mode published ports (only balanced in the ingress sandbox). */
  published?: PublishedPortInput[];
}

/** Task lifecycle as far as balancing cares; anything else (pending, starting, ...) gets no traffic. */
export type TaskLbState = 'running' | 'stopping' | 'draining' | 'failed' | 'dead' | 'pending' | 'starting' | 'complete';

/** A task of a service. */
export interface TaskInput {
  id: string;
  serviceId: string;
  state: TaskLbState;
  /** networkId -> the task's address on that network. */
  addresses: Record<string, string>;
  /** Stopping/draining tasks keep weight 0 until this time (ms since epoch), then leave the table. */
  drainDeadline?: number;
}

/** The namespace the table is for. */
export interface NamespaceInput {
  /** Networks this namespace (task or ingress sandbox) is attached to. */
  attachedNetworks: string[];
  /** Set when this namespace is the ingress sandbox: published ports are balanced to tasks on `networkId`. */
  ingress?: { networkId: string; sourceNat?: string };
}

export interface DesiredTableInput {
  services: ServiceInput[];
  tasks: TaskInput[];
  namespace: NamespaceInput;
  /** Current time (ms since epoch), for drain deadlines. */
  now: number;
}

/** Input that can never produce a table (bad port, bad address); names the service. */
export class DesiredTableInputError extends Error {
  readonly code = 'INVALID_LB_INPUT';
  constructor(message: string) {
    super(`invalid load-balancer input: ${message}`);
    this.name = 'DesiredTableInputError';
  }
}

function slug(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return (s || 'svc').slice(0, 20);
}

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 10);
}

/**
 * A stable id for one frontend of a service: readable prefix, a hash of the service id and the
 * network (so renames keep it and equal names do not collide), protocol and port. Matches
 * [a-z0-9_-]{1,48}, so it is safe as an nft chain name suffix.
 */
export function lbServiceId(serviceId: string, serviceName: string, scope: string, protocol: L4Protocol, port: number): string {
  return `${slug(serviceName)}-${shortHash(serviceId, scope)}-${protocol}${port}`;
}

/** Weight of a task right now: 1 running, 0 while draining before its deadline, null when it must not be listed. */
export function taskWeight(task: TaskInput, now: number): number | null {
  if (task.state === 'running') return 1;
  if (task.state === 'stopping' || task.state === 'draining') {
    return task.drainDeadline !== undefined && now < task.drainDeadline ? 0 : null;
  }
  return null;
}

function checkPort(svc: ServiceInput, what: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DesiredTableInputError(`service ${svc.name} (${svc.id}): ${what} ${port} must be 1-65535`);
  }
}

function backendsOn(tasks: TaskInput[], networkId: string, port: number, now: number): LbBackendTarget[] {
  const byAddress = new Map<string, LbBackendTarget>();
  for (const t of tasks) {
    const address = t.addresses[networkId];
    const weight = taskWeight(t, now);
    if (!address || !isIPv4(address) || weight === null) continue;
    // Two records for one address (a restarted task reusing it): the running one wins.
    const prev = byAddress.get(address);
    if (!prev || weight > prev.weight) byAddress.set(address, { address, port, weight });
  }
  return [...byAddress.values()];
}

/**
 * The load-balancing table of one namespace: for every VIP service on a network the namespace
 * is attached to, one frontend per port, balanced over the service's tasks on that network;
 * in the ingress sandbox, one fwmark frontend per published port. Pure: same input, same table.
 */
export function desiredLbTable(input: DesiredTableInput): LbTable {
  const attached = new Set(input.namespace.attachedNetworks);
  const tasksOf = new Map<string, TaskInput[]>();
  for (const t of input.tasks) {
    const list = tasksOf.get(t.serviceId) ?? [];
    list.push(t);
    tasksOf.set(t.serviceId, list);
  }
  const out: VirtualService[] = [];
  const services = [...input.services].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const svc of services) {
    const tasks = tasksOf.get(svc.id) ?? [];
    const scheduler = svc.scheduler ?? 'rr';
    const options = svc.affinityTimeoutSeconds ? { persistenceSeconds: svc.affinityTimeoutSeconds } : {};
    if (svc.endpointMode === 'vip') {
      for (const networkId of Object.keys(svc.vips).sort()) {
        if (!attached.has(networkId)) continue;
        const vip = svc.vips[networkId]!;
        if (!isIPv4(vip)) throw new DesiredTableInputError(`service ${svc.name} (${svc.id}): VIP ${JSON.stringify(vip)} on ${networkId} is not IPv4`);
        for (const p of svc.ports) {
          // Port 0: every port of the VIP, each kept as the client sent it (Swarm's VIP semantics).
          const target = p.port === 0 ? 0 : (p.targetPort ?? p.port);
          if (p.port === 0 && p.targetPort !== undefined && p.targetPort !== 0) {
            throw new DesiredTableInputError(`service ${svc.name} (${svc.id}): port 0 means every port, each kept as sent; it cannot have target port ${p.targetPort}`);
          }
          if (p.port !== 0) {
            checkPort(svc, 'port', p.port);
            checkPort(svc, 'target port', target);
          }
          out.push({
            id: lbServiceId(svc.id, svc.name, networkId, p.protocol, p.port),
            frontend: { kind: 'vip', address: vip, protocol: p.protocol, port: p.port },
            scheduler,
            ...options,
            backends: backendsOn(tasks, networkId, target, input.now),
          });
        }
      }
    }
    const ingress = input.namespace.ingress;
    if (ingress && svc.endpointMode === 'vip' && attached.has(ingress.networkId)) {
      for (const p of svc.published ?? []) {
        checkPort(svc, 'published port', p.publishedPort);
        checkPort(svc, 'target port', p.targetPort);
        out.push({
          id: lbServiceId(svc.id, svc.name, `ingress:${ingress.networkId}`, p.protocol, p.publishedPort),
          frontend: { kind: 'fwmark', mark: p.mark, protocol: p.protocol, port: p.publishedPort },
          scheduler,
          ...options,
          ...(ingress.sourceNat ? { sourceNat: ingress.sourceNat } : {}),
          backends: backendsOn(tasks, ingress.networkId, p.targetPort, input.now),
        });
      }
    }
  }
  return { services: out };
}
