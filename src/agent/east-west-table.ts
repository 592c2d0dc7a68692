import { createHash } from 'node:crypto';
import type { ClusterSnapshot } from '../model/cluster.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import type { LbTable, VirtualService } from '../vip/lb-table.js';
import type { LocalTask } from './node-state.js';

/** A table-unique id safe as an nft chain suffix: [a-z0-9_-], at most 48 characters. */
export function serviceChainId(parts: string[]): string {
  const raw = parts.join('-').toLowerCase().replace(/[^a-z0-9_-]/g, '_');
  return raw.length <= 48 ? raw : `${raw.slice(0, 35)}-${createHash('sha256').update(raw).digest('hex').slice(0, 12)}`;
}

/**
 * Pure: the east-west table for one task's namespace. For every service in `vip` mode on a network
 * the task is on, each of its ports on that VIP spreads over the service's tasks on every live host.
 * Running tasks get weight 1; draining ones weight 0 (their connections finish, no new ones);
 * others are absent. The task DNATs its own connections, so backends see the real client address.
 */
export function eastWestTable(snapshot: ClusterSnapshot, task: LocalTask): LbTable {
  const live = new Set(snapshot.nodes.map((n) => n.id));
  const nets = task.interfaces.map((i) => i.network).filter((n) => n !== INGRESS_NETWORK);
  const services: VirtualService[] = [];
  for (const net of nets) {
    for (const svc of snapshot.services) {
      const vip = svc.vips[net];
      if (svc.endpointMode !== 'vip' || !vip) continue;
      const backends = snapshot.tasks.filter((t) => t.service === svc.name && live.has(t.node) && t.addresses[net]);
      const ports = new Map<string, { protocol: 'tcp' | 'udp'; port: number }>();
      for (const p of svc.ports) ports.set(`${p.protocol}/${p.target}`, { protocol: p.protocol, port: p.target });
      for (const { protocol, port } of [...ports.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol))) {
        const vs: VirtualService = {
          id: serviceChainId([svc.name, net, protocol, String(port)]),
          frontend: { kind: 'vip', address: vip, protocol, port },
          scheduler: svc.lb.scheduler,
          backends: backends
            .filter((t) => t.desiredState === 'shutdown' || t.state === 'running')
            .map((t) => ({ address: t.addresses[net]!.ip, port, weight: t.desiredState === 'shutdown' ? 0 : 1 }))
            .sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true })),
        };
        if (svc.lb.affinity) vs.persistenceSeconds = svc.lb.affinity.timeoutSeconds;
        services.push(vs);
      }
    }
  }
  return { services };
}
