import { join } from 'node:path';
import type { NodeRecord } from '../model/records.js';
import type { VtepProbeTarget } from '../overlay/vtep-prober.js';
import type { IngressEndpoint } from './ingress-endpoint.js';
import { INGRESS_SBOX, type NodePlan } from './node-plan.js';

/**
 * Pure: what this node probes, from its plan: from its ingress sandbox's overlay address to every
 * live peer's, so each probe crosses VXLAN as published-port traffic does. Null when the node has no
 * ingress sandbox (no ingress network yet): nothing is probed, and peers are judged by their lease.
 */
export function vtepProbeTarget(plan: NodePlan, netnsDir: string, nodes: readonly NodeRecord[], endpoints: readonly IngressEndpoint[], me: string): VtepProbeTarget | null {
  if (!plan.ingress) return null;
  const live = new Set(nodes.map((n) => n.id));
  const peers = endpoints
    .filter((e) => e.node !== me && live.has(e.node))
    .map((e) => ({ node: e.node, address: e.ip }))
    .sort((a, b) => a.node.localeCompare(b.node));
  return { netns: join(netnsDir, INGRESS_SBOX), source: plan.ingress.endpoint.ip, peers };
}
