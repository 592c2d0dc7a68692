import type { L4Protocol, LbBackendTarget, VirtualService } from '../vip/lb-table.js';
import {
  HealthPortConflictError,
  HostPortConflictError,
  InvalidMeshInputError,
  PublishedPortConflictError,
  type MeshConflictError,
} from './errors.js';
import { parseMeshInput, type MeshInput, type PortSpec, type ServiceInput, type TaskInput } from './mesh-input.js';
import type { HealthPortPlan, HostModePort, IngressPort, MeshPlan, ReturnRoute, TaskPlan, TaskRedirect } from './mesh-plan.js';

/** fwmarks of published ports start here (as Docker's do), leaving lower marks to others. */
export const FWMARK_BASE = 256;
/** Routing table and rule priority of the policy=local return route inside tasks. */
export const RETURN_ROUTE_TABLE = 2550;
export const RETURN_ROUTE_PRIORITY = 2550;

/**
 * The fwmark of a published port: derived from the port alone, so every node agrees on it
 * without allocation and it never changes while the port stays published.
 * tcp: 256 + port (257..65791), udp: 256 + 65536 + port.
 */
export function fwmarkFor(protocol: L4Protocol, port: number): number {
  return FWMARK_BASE + (protocol === 'udp' ? 65536 : 0) + port;
}

/** The VirtualService id of a published port (stable, safe as an nft chain suffix). */
export function ingressServiceId(protocol: L4Protocol, port: number): string {
  return `ingress-${protocol}-${port}`;
}

/** One accepted published port of a service. */
export interface AcceptedPort {
  service: ServiceInput;
  spec: PortSpec;
}

/** Cluster-wide port claims: what each service may hold, and the claims refused. */
export interface ClusterClaims {
  ingress: AcceptedPort[];
  hostMode: AcceptedPort[];
  health: { service: ServiceInput; port: number }[];
  conflicts: MeshConflictError[];
}

const key = (protocol: string, port: number): string => `${port}/${protocol}`;

/**
 * Cluster-wide port claims in input order (pass services oldest first: the older claim wins).
 * Ingress ports are held on every node; a mode=host port may not reuse one; health ports are
 * served on every node too. Conflicting claims are returned as errors and left out.
 */
export function claimPublishedPorts(
  services: readonly ServiceInput[],
  boundHostPorts: readonly { protocol: L4Protocol; port: number; owner: string }[] = [],
): ClusterClaims {
  const held = new Map<string, string>();
  for (const b of boundHostPorts) held.set(key(b.protocol, b.port), b.owner);
  const out: ClusterClaims = { ingress: [], hostMode: [], health: [], conflicts: [] };
  for (const service of services) {
    for (const spec of service.ports) {
      if (spec.mode !== 'ingress') continue;
      const k = key(spec.protocol, spec.published);
      const holder = held.get(k);
      if (holder !== undefined) {
        out.conflicts.push(new PublishedPortConflictError(spec.protocol, spec.published, service.id, holder));
        continue;
      }
      held.set(k, `service ${service.id} (ingress)`);
      out.ingress.push({ service, spec });
    }
  }
  for (const service of services) {
    const needsHealth = service.ports.some((p) => p.mode === 'ingress' && p.policy === 'local');
    if (!needsHealth || service.healthPort === undefined) continue;
    const k = key('tcp', service.healthPort);
    const holder = held.get(k);
    if (holder !== undefined) {
      out.conflicts.push(new HealthPortConflictError(service.healthPort, service.id, holder));
      continue;
    }
    held.set(k, `service ${service.id} (health check)`);
    out.health.push({ service, port: service.healthPort });
  }
  // mode=host ports only collide with cluster-wide claims here; between services they collide per node.
  for (const service of services) {
    const own = new Set<string>();
    for (const spec of service.ports) {
      if (spec.mode !== 'host') continue;
      const k = key(spec.protocol, spec.published);
      const holder = held.get(k) ?? (own.has(k) ? `service ${service.id} (mode=host, listed twice)` : undefined);
      if (holder !== undefined) {
        out.conflicts.push(new PublishedPortConflictError(spec.protocol, spec.published, service.id, holder));
        continue;
      }
      own.add(k);
      out.hostMode.push({ service, spec });
    }
  }
  return out;
}

/** Throws the first port conflict among `services` (for refusing a service create or update). */
export function assertNoPortConflicts(
  services: readonly ServiceInput[],
  boundHostPorts: readonly { protocol: L4Protocol; port: number; owner: string }[] = [],
): void {
  const { conflicts } = claimPublishedPorts(services, boundHostPorts);
  if (conflicts.length > 0) throw conflicts[0]!;
}

const byAddress = (a: { address: string }, b: { address: string }): number => compareIp(a.address, b.address);

function compareIp(a: string, b: string): number {
  const n = (s: string): number => s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a) - n(b);
}

function backendsFor(tasks: readonly TaskInput[]): LbBackendTarget[] {
  return tasks
    .filter((t) => t.ingressAddress !== undefined && (t.state === 'running' || t.state === 'draining'))
    .map((t) => ({ address: t.ingressAddress!, port: 0, weight: t.state === 'running' ? 1 : 0 }))
    .sort(byAddress);
}

/** Computes what this node must hold for the mesh; pure, validates its input first. */
export function computeMeshPlan(rawInput: MeshInput): MeshPlan {
  const input = parseMeshInput(rawInput);
  const { node } = input;
  // Publishing is cluster-wide: the sandbox's services and the tasks' redirects follow the cluster's
  // claims, so traffic from other hosts still reaches this host's tasks. A port some program already
  // holds here only keeps this host from DNATing (or binding) it: `here` adds the host's own sockets.
  const claims = claimPublishedPorts(input.services);
  const here = input.boundHostPorts.length > 0 ? claimPublishedPorts(input.services, input.boundHostPorts) : claims;
  const conflicts: MeshConflictError[] = [...here.conflicts];
  const dnatHere = new Set(here.ingress.map(({ spec }) => key(spec.protocol, spec.published)));

  const tasksOf = new Map<string, TaskInput[]>();
  for (const t of input.tasks) {
    const list = tasksOf.get(t.serviceId) ?? [];
    list.push(t);
    tasksOf.set(t.serviceId, list);
  }
  const isLocal = (t: TaskInput): boolean => t.nodeId === node.nodeId;
  const localRunning = (serviceId: string): TaskInput[] =>
    (tasksOf.get(serviceId) ?? []).filter((t) => isLocal(t) && t.state === 'running');

  // Ingress ports: DNAT on the host, a fwmark service in the sandbox.
  const ingressPorts: IngressPort[] = [];
  const virtualServices: VirtualService[] = [];
  for (const { service, spec } of claims.ingress) {
    const all = tasksOf.get(service.id) ?? [];
    const local = spec.policy === 'local';
    const backends = backendsFor(local ? all.filter(isLocal) : all);
    // policy=local on a node without a running local task: no DNAT, so the host itself refuses.
    const servedHere = !local || backends.some((b) => b.weight > 0);
    if (servedHere && dnatHere.has(key(spec.protocol, spec.published))) ingressPorts.push({ protocol: spec.protocol, port: spec.published });
    virtualServices.push({
      id: ingressServiceId(spec.protocol, spec.published),
      frontend: {
        kind: 'fwmark',
        mark: fwmarkFor(spec.protocol, spec.published),
        protocol: spec.protocol,
        port: spec.published,
        address: node.sbox.gwbridgeAddress,
      },
      // The service's own choices, as its VIP gets them: Swarm's published ports could only do rr (moby#37057).
      scheduler: service.scheduler ?? 'rr',
      ...(service.affinityTimeoutSeconds !== undefined ? { persistenceSeconds: service.affinityTimeoutSeconds } : {}),
      ...(local ? {} : { sourceNat: node.sbox.ingressAddress }),
      backends,
    });
  }

  // mode=host ports: only where a task runs, one task per port per node.
  const hostModePorts: HostModePort[] = [];
  const hostHeld = new Map<string, string>();
  for (const { service, spec } of here.hostMode) {
    const candidates = localRunning(service.id)
      .filter((t) => t.gwbridgeAddress !== undefined)
      .sort((a, b) => a.id.localeCompare(b.id));
    for (const task of candidates) {
      const k = key(spec.protocol, spec.published);
      const holder = hostHeld.get(k);
      if (holder !== undefined) {
        conflicts.push(new HostPortConflictError(spec.protocol, spec.published, node.nodeId, task.id, holder));
        continue;
      }
      hostHeld.set(k, `task ${task.id} of service ${service.id}`);
      hostModePorts.push({
        protocol: spec.protocol,
        port: spec.published,
        serviceId: service.id,
        taskId: task.id,
        taskAddress: task.gwbridgeAddress!,
        targetPort: spec.target,
      });
    }
  }

  // Inside each local task: redirect published -> target; return routing for policy=local.
  const tasks: TaskPlan[] = [];
  const ingressBySvc = new Map<string, PortSpec[]>();
  for (const { service, spec } of claims.ingress) {
    ingressBySvc.set(service.id, [...(ingressBySvc.get(service.id) ?? []), spec]);
  }
  for (const task of [...input.tasks].sort((a, b) => a.id.localeCompare(b.id))) {
    const specs = ingressBySvc.get(task.serviceId);
    if (!specs || !isLocal(task) || task.state === 'stopped' || task.ingressAddress === undefined) continue;
    const redirects: TaskRedirect[] = specs.map((s) => ({
      protocol: s.protocol,
      address: task.ingressAddress!,
      port: s.published,
      targetPort: s.target,
    }));
    let returnRoute: ReturnRoute | null = null;
    if (specs.some((s) => s.policy === 'local')) {
      if (task.ingressInterface === undefined) {
        throw new InvalidMeshInputError(
          `task ${task.id} serves a policy=local port but has no ingressInterface: give the name of its interface on the ingress network`,
        );
      }
      returnRoute = {
        from: task.ingressAddress,
        table: RETURN_ROUTE_TABLE,
        priority: RETURN_ROUTE_PRIORITY,
        device: task.ingressInterface,
        routes: [{ to: node.ingressSubnet }, { to: 'default', via: node.sbox.ingressAddress }],
      };
    }
    tasks.push({ taskId: task.id, serviceId: task.serviceId, redirects: sortPorts(redirects), returnRoute });
  }

  const health: HealthPortPlan[] = here.health
    .map(({ service, port }) => ({
      serviceId: service.id,
      serviceName: service.name,
      port,
      localTasks: localRunning(service.id).length,
    }))
    .sort((a, b) => a.port - b.port);

  return {
    nodeId: node.nodeId,
    host: {
      gwbridge: node.gwbridge,
      sboxAddress: node.sbox.gwbridgeAddress,
      ingressPorts: sortPorts(ingressPorts),
      hostModePorts: sortPorts(hostModePorts),
      sysctls: [
        { key: 'net.ipv4.ip_forward', value: '1' },
        // Lets the host DNAT 127.0.0.1:P to the sandbox: `curl localhost:P` on a node.
        { key: `net.ipv4.conf.${node.gwbridge.name}.route_localnet`, value: '1' },
      ],
    },
    sbox: {
      virtualServices: virtualServices.sort((a, b) => a.id.localeCompare(b.id)),
      sysctls: [{ key: 'net.ipv4.ip_forward', value: '1' }],
    },
    tasks,
    health,
    conflicts,
  };
}

function sortPorts<T extends { protocol: L4Protocol; port: number }>(list: T[]): T[] {
  return list.sort((a, b) => a.protocol.localeCompare(b.protocol) || a.port - b.port);
}
