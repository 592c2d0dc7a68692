import type { ClusterSnapshot } from './cluster.js';
import { placeReplicas } from './placement.js';

// Where every service's slots should run, computed from one snapshot: the same answer on every agent, so each
// agent claims exactly the slots placed on it. Current task owners count as history, so slots stay put while
// their node lives.

/** One slot of one service. */
export interface SlotRef {
  service: string;
  slot: number;
}

/** service → (slot → node) for every service of the snapshot, over its live nodes. */
export function placeSnapshot(snapshot: Pick<ClusterSnapshot, 'nodes' | 'services' | 'tasks'>): Map<string, Map<number, string>> {
  const live = snapshot.nodes.map((n) => n.id);
  const placements = new Map<string, Map<number, string>>();
  for (const service of snapshot.services) {
    const current = new Map(
      snapshot.tasks.filter((t) => t.service === service.name && t.desiredState === 'running').map((t) => [t.slot, t.node] as const),
    );
    placements.set(service.name, placeReplicas(service.name, service.replicas, live, current));
  }
  return placements;
}

/** The slots placed on `nodeId`, ordered by service then slot. */
export function slotsForNode(snapshot: Pick<ClusterSnapshot, 'nodes' | 'services' | 'tasks'>, nodeId: string): SlotRef[] {
  const mine: SlotRef[] = [];
  for (const [service, placement] of placeSnapshot(snapshot)) {
    for (const [slot, node] of placement) if (node === nodeId) mine.push({ service, slot });
  }
  return mine.sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
}
