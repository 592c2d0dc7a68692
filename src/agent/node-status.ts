import { z } from 'zod';
import type { KvStore } from '../store/kv-store.js';
import type { LbTable } from '../vip/lb-table.js';
import { lbServiceId } from '../vip/service-id.js';
import { ingressServiceId } from '../mesh/published-ports.js';
import { attachedNetworks, type ClusterSnapshot } from '../model/cluster.js';
import { INGRESS_NETWORK } from '../model/ipam.js';

/** What each agent last programmed, so `meshnet service inspect` can show every node's view. */
export const NODE_STATUS = '/meshnet/node-status/';

// Not strict: agents of other versions share the store, and a field one does not know is not an error.
const NodeStatusSchema = z.object({
  node: z.string(),
  lbBackend: z.enum(['nftables', 'ipvs']),
  updatedAt: z.string(),
  /** frontend ("vip 10.0.1.2 tcp 80" / "ingress tcp 8000") -> backends ("10.0.1.5:80 w1"), per service name. */
  services: z.record(z.string(), z.record(z.string(), z.array(z.string()))),
  /** What this node could not do as asked (port conflicts, shadowed host programs), for `service inspect`. */
  conflicts: z.array(z.string()).optional(),
  /** Where this node's agent API answers: `unix:/run/meshnet/api.sock` or `https://10.1.0.11:9324`. A malformed one reads as none. */
  api: z.string().optional().catch(undefined),
});

/** One node's load-balancing view. */
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

/** Summarises the tables a node programmed, per service. `serviceOf` maps a table id back to a service. */
export function summarizeTables(tables: readonly LbTable[], serviceOf: (id: string) => string | undefined): NodeStatus['services'] {
  const out: NodeStatus['services'] = {};
  for (const table of tables) {
    for (const vs of table.services) {
      const svc = serviceOf(vs.id);
      if (!svc) continue;
      const f = vs.frontend;
      const key = f.kind === 'vip' ? `vip ${f.address}:${f.port || '*'}/${f.protocol}` : `published ${f.port}/${f.protocol} (fwmark ${f.mark})`;
      const entry = (out[svc] ??= {});
      entry[key] = vs.backends.map((b) => `${b.address}:${b.port || '*'}${b.weight === 0 ? ' (draining)' : ''}`).sort();
    }
  }
  return out;
}

/** The status a node publishes: every table it programmed, summarised per service. */
export function publishableStatus(node: string, lbBackend: NodeStatus['lbBackend'], snapshot: ClusterSnapshot, tables: readonly LbTable[], conflicts: readonly string[] = [], api?: string): NodeStatus {
  const owner = new Map<string, string>();
  for (const svc of snapshot.services) {
    for (const net of attachedNetworks(svc).filter((n) => n !== INGRESS_NETWORK)) {
      for (const protocol of ['tcp', 'udp'] as const) owner.set(lbServiceId(svc.name, svc.name, net, protocol, 0), svc.name);
    }
    for (const p of svc.ports) owner.set(ingressServiceId(p.protocol, p.published), svc.name);
  }
  // Task namespaces on the same networks share one table object: summarise each once.
  const services = summarizeTables([...new Set(tables)], (id) => owner.get(id));
  return { node, lbBackend, updatedAt: new Date().toISOString(), services, ...(conflicts.length ? { conflicts: [...conflicts] } : {}), ...(api !== undefined ? { api } : {}) };
}

/** Writes the status under the node's lease (it vanishes with the node). */
export async function writeNodeStatus(store: KvStore, status: NodeStatus, lease: string): Promise<void> {
  await store.put(`${NODE_STATUS}${status.node}`, JSON.stringify(status), { lease });
}

/** Every node's status; unreadable records are skipped. */
export async function readNodeStatuses(store: KvStore): Promise<NodeStatus[]> {
  const { kvs } = await store.range(NODE_STATUS);
  const out: NodeStatus[] = [];
  for (const kv of kvs) {
    try {
      const parsed = NodeStatusSchema.safeParse(JSON.parse(kv.value));
      if (parsed.success) out.push(parsed.data);
    } catch {
      // A half-written or foreign record: inspect shows the others.
    }
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}
