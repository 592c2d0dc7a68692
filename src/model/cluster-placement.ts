import type { ClusterSnapshot } from './cluster.js';
import { availabilityById } from './node-info.js';
import { placeReplicas } from './placement.js';

// Where every service's slots should run, computed from one snapshot: the same answer on every agent, so each
// agent claims exactly the slots placed on it. Current task owners count as history, so slots stay put while
// their node lives. Availability (from the nodes' persistent records) narrows the live nodes: an active node
// takes slots; a paused one keeps the slots it runs and takes no new one; a drained one keeps none, so its
// own agent drains its tasks and other nodes claim the slots once they are gone.

/** One slot of one service. */
export interface SlotRef {
  service: string;
  slot: number;
}

/** What placement reads of a snapshot (nodeInfo absent: every live node is active). */
export type PlacementInput = Pick<ClusterSnapshot, 'nodes' | 'services' | 'tasks'> & Partial<Pick<ClusterSnapshot, 'nodeInfo'>>;

/** service → (slot → node) for every service of the snapshot, over its live nodes as their availability allows. */
export function placeSnapshot(snapshot: PlacementInput): Map<string, Map<number, string>> {
  const availability = availabilityById(snapshot.nodeInfo ?? []);
  const live = snapshot.nodes.map((n) => n.id);
  const active = live.filter((id) => availability(id) === 'active');
  const paused = new Set(live.filter((id) => availability(id) === 'pause'));
  const placements = new Map<string, Map<number, string>>();
  for (const service of snapshot.services) {
    const running = snapshot.tasks.filter((t) => t.service === service.name && t.desiredState === 'running');
    const current = new Map(running.map((t) => [t.slot, t.node] as const));
    const pinned = new Map(running.filter((t) => paused.has(t.node)).map((t) => [t.slot, t.node] as const));
    placements.set(service.name, placeReplicas(service.name, service.replicas, active, current, pinned));
  }
  return placements;
}

/** The slots placed on `nodeId`, ordered by service then slot. */
export function slotsForNode(snapshot: PlacementInput, nodeId: string): SlotRef[] {
  const mine: SlotRef[] = [];
  for (const [service, placement] of placeSnapshot(snapshot)) {
    for (const [slot, node] of placement) if (node === nodeId) mine.push({ service, slot });
  }
  return mine.sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
}
