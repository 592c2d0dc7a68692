import { stableHash64 } from './stable-hash.js';

// Deterministic spread placement: every agent computes the same slot → node map from the same inputs.
// Each node may hold floor(r/n) or ceil(r/n) slots (and only r mod n nodes the larger count). Slots keep their
// current node while that node is live and within its share, so a dying node moves only its own slots and a
// joining node takes only what balancing requires. Everything else goes to the slot's highest rendezvous-hash
// node that still has room, which spreads slots evenly and stays stable as nodes come and go.

/** Rendezvous weight of `nodeId` for one slot of one service (higher wins). */
export function rendezvousScore(serviceName: string, slot: number, nodeId: string): bigint {
  return stableHash64(`${serviceName}\u0000${slot}\u0000${nodeId}`);
}

/** Nodes ordered by preference for one slot. */
function preferenceOrder(serviceName: string, slot: number, nodes: readonly string[]): string[] {
  const scored = nodes.map((id) => ({ id, score: rendezvousScore(serviceName, slot, id) }));
  scored.sort((a, b) => (a.score === b.score ? (a.id < b.id ? -1 : 1) : a.score > b.score ? -1 : 1));
  return scored.map((s) => s.id);
}

/**
 * Assigns slots 1..replicas to live nodes: every slot exactly once, spread evenly, deterministic.
 * `current` (slot → node, e.g. from task records) is kept where possible to move as few slots as possible.
 * `pinned` slots stay where they are and are left out of the spread (a paused node keeps its tasks but takes
 * no new ones); the other slots spread over `liveNodeIds`. With `maxPerNode` (> 0) no node takes more than that
 * many: slots beyond what the nodes can hold stay unplaced (pending), running ones kept first, then the lowest.
 */
export function placeReplicas(
  serviceName: string,
  replicas: number,
  liveNodeIds: readonly string[],
  current: ReadonlyMap<number, string> = new Map(),
  pinned: ReadonlyMap<number, string> = new Map(),
  maxPerNode = 0,
): Map<number, string> {
  const placement = new Map<number, string>();
  for (const [slot, node] of pinned) if (slot >= 1 && slot <= replicas) placement.set(slot, node);
  const nodes = [...new Set(liveNodeIds)].sort();
  const spread = Math.min(replicas - placement.size, maxPerNode > 0 ? maxPerNode * nodes.length : Infinity);
  if (spread <= 0 || nodes.length === 0) return placement;
  const base = Math.floor(spread / nodes.length);
  let largeLeft = spread % nodes.length;
  const count = new Map(nodes.map((n) => [n, 0]));
  const hasRoom = (node: string): boolean => {
    const c = count.get(node);
    if (c === undefined) return false;
    return c < base || (c === base && largeLeft > 0);
  };
  const take = (slot: number, node: string): void => {
    const c = count.get(node)!;
    if (c === base) largeLeft--;
    count.set(node, c + 1);
    placement.set(slot, node);
  };

  // Keep current assignments on live nodes, strongest claims first so the kept set does not depend on slot order.
  const keep = [...current.entries()]
    .filter(([slot, node]) => slot >= 1 && slot <= replicas && !placement.has(slot) && count.has(node))
    .map(([slot, node]) => ({ slot, node, score: rendezvousScore(serviceName, slot, node) }))
    .sort((a, b) => (a.score === b.score ? a.slot - b.slot : a.score > b.score ? -1 : 1));
  // Capacities sum to exactly the slots to spread, so keeping only where there is room always leaves room for the rest.
  for (const { slot, node } of keep) if (hasRoom(node)) take(slot, node);

  let placed = [...count.values()].reduce((a, b) => a + b, 0);
  for (let slot = 1; slot <= replicas && placed < spread; slot++) {
    if (placement.has(slot)) continue;
    placed++;
    const node = preferenceOrder(serviceName, slot, nodes).find(hasRoom);
    if (node === undefined) throw new Error(`placement invariant broken for ${serviceName} slot ${slot}`);
    take(slot, node);
  }
  return placement;
}

/**
 * Assigns one slot to each eligible node of a global service, deterministically. A node keeps the slot it runs
 * (`current`, slot → node; the lowest when it runs several) and a `pinned` node (paused, keeping its task) keeps
 * its slot too; every other node, in id order, takes the lowest slot nobody holds, so every agent computing this
 * from the same snapshot gets the same answer and a node keeps its slot for as long as it stays eligible.
 */
export function placeGlobal(
  eligibleNodeIds: readonly string[],
  current: ReadonlyMap<number, string> = new Map(),
  pinned: ReadonlyMap<number, string> = new Map(),
): Map<number, string> {
  const placement = new Map<number, string>();
  const slotOf = new Map<string, number>();
  const keepLowest = (held: ReadonlyMap<number, string>, allowed: (node: string) => boolean): void => {
    for (const [slot, node] of [...held].sort((a, b) => a[0] - b[0])) {
      if (slot < 1 || !allowed(node) || slotOf.has(node) || placement.has(slot)) continue;
      placement.set(slot, node);
      slotOf.set(node, slot);
    }
  };
  const nodes = [...new Set(eligibleNodeIds)].sort();
  const eligible = new Set(nodes);
  keepLowest(pinned, () => true);
  keepLowest(current, (node) => eligible.has(node));
  let next = 1;
  for (const node of nodes) {
    if (slotOf.has(node)) continue;
    while (placement.has(next)) next++;
    placement.set(next, node);
    slotOf.set(node, next);
  }
  return placement;
}
