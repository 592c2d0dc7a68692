import type { ClusterSnapshot } from '../model/cluster.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import type { LbTable } from '../vip/lb-table.js';
import { desiredLbTable, type ServiceInput, type TaskInput } from '../vip/desired-table.js';
import type { LocalTask } from './node-state.js';

/**
 * The VIP layer's view of the services: each VIP forwards every TCP and UDP port (frontend port 0),
 * each connection keeping its destination port, as Swarm's VIPs do.
 */
export function lbServices(snapshot: ClusterSnapshot): ServiceInput[] {
  return snapshot.services.map((s) => {
    const vips = Object.fromEntries(Object.entries(s.vips).filter(([n]) => n !== INGRESS_NETWORK));
    const ports = [
      { protocol: 'tcp' as const, port: 0 },
      { protocol: 'udp' as const, port: 0 },
    ];
    const svc: ServiceInput = { id: s.name, name: s.name, endpointMode: s.endpointMode, vips, ports, scheduler: s.lb.scheduler };
    if (s.lb.affinity) svc.affinityTimeoutSeconds = s.lb.affinity.timeoutSeconds;
    return svc;
  });
}

/** The VIP layer's view of the tasks on live nodes: draining ones keep weight 0 until their drain deadline. */
export function lbTasks(snapshot: ClusterSnapshot, drainSeconds: number): TaskInput[] {
  const live = new Set(snapshot.nodes.map((n) => n.id));
  return snapshot.tasks
    .filter((t) => live.has(t.node))
    .map((t) => {
      const input: TaskInput = {
        id: t.id,
        serviceId: t.service,
        state: t.desiredState === 'shutdown' ? 'draining' : t.state === 'running' ? 'running' : t.state === 'failed' ? 'failed' : 'starting',
        addresses: Object.fromEntries(Object.entries(t.addresses).map(([n, a]) => [n, a.ip])),
      };
      if (t.desiredState === 'shutdown') input.drainDeadline = Date.parse(t.updatedAt) + drainSeconds * 1000;
      return input;
    });
}

/**
 * The east-west table of one task's namespace, computed by the VIP layer's pure function: every
 * VIP of the task's networks spread over the service's tasks on every live host. The task DNATs
 * its own connections, so backends see the real client address.
 */
export function eastWestTable(snapshot: ClusterSnapshot, task: LocalTask, drainSeconds: number, now: number): LbTable {
  return desiredLbTable({
    services: lbServices(snapshot),
    tasks: lbTasks(snapshot, drainSeconds),
    namespace: { attachedNetworks: task.interfaces.map((i) => i.network).filter((n) => n !== INGRESS_NETWORK) },
    now,
  });
}
