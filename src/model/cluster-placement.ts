import type { ClusterSnapshot } from './cluster.js';
import { availabilityById } from './node-info.js';
import { placeGlobal, placeReplicas } from './placement.js';
import { nodeMatches, parseConstraint, type Constraint, type PlacementNode } from './placement-constraints.js';
import type { ServiceRecord } from './records.js';

// Where every service's slots should run, computed from one snapshot: the same answer on every agent, so each
// agent claims exactly the slots placed on it. Current task owners count as history, so slots stay put while
// their node lives. Availability (from the nodes' persistent records) narrows the live nodes: an active node
// takes slots; a paused one keeps the slots it runs and takes no new one; a drained one keeps none, so its
// own agent drains its tasks and other nodes claim the slots once they are gone. A service's constraints narrow
// them further (a task on a node that no longer matches is not kept, so it drains), and its per-node cap bounds
// how many slots one node takes; replicas no node can take stay pending, with the reason.

/** One slot of one service. */
export interface SlotRef {
  service: string;
  slot: number;
}

/** What placement reads of a snapshot (nodeInfo absent: every live node is active). */
export type PlacementInput = Pick<ClusterSnapshot, 'nodes' | 'services' | 'tasks'> & Partial<Pick<ClusterSnapshot, 'nodeInfo'>>;

/** Where one service's tasks go. */
export interface ServicePlacement {
  /** slot → node for every slot that has a node now. */
  slots: Map<number, string>;
  /** Tasks the service asks for: its replicas, or for a global service one per eligible node (paused ones keeping theirs). */
  desired: number;
  /** Replicas that no node can take now (they wait; not an error). */
  pending: number;
  /** Why they wait, e.g. "no suitable node (1 node matches node.labels.zone==eu, max 1 per node)". */
  pendingReason?: string;
}

/** Whether a service runs one task per eligible node (absent mode: replicated). */
export function isGlobal(service: Pick<ServiceRecord, 'mode'>): boolean {
  return service.mode === 'global';
}

/**
 * A service's last placement and what it was computed from. Every agent pass places every service again;
 * one whose replicas, mode, constraints, eligible and staying nodes and current slots are unchanged gets the same answer, so
 * it is kept (callers only read it). At 60 services this was most of a no-op pass's placement time.
 */
const lastPlacement = new WeakMap<ServiceRecord, { key: string; plan: ServicePlacement }>();

/** Where every service of the snapshot runs, with what stays pending and why. */
export function planPlacement(snapshot: PlacementInput): Map<string, ServicePlacement> {
  const availability = availabilityById(snapshot.nodeInfo ?? []);
  const labelsById = new Map((snapshot.nodeInfo ?? []).map((i) => [i.id, i.labels] as const));
  const live: PlacementNode[] = snapshot.nodes.map((n) => ({ id: n.id, name: n.name, labels: labelsById.get(n.id) ?? n.labels ?? {} }));
  const active = live.filter((n) => availability(n.id) === 'active');
  const paused = live.filter((n) => availability(n.id) === 'pause');
  const runningByService = new Map<string, Map<number, string>>();
  for (const t of snapshot.tasks) {
    // Attached tasks have slots of their own, outside placement.
    if (t.desiredState !== 'running' || t.external) continue;
    let m = runningByService.get(t.service);
    if (!m) runningByService.set(t.service, (m = new Map()));
    m.set(t.slot, t.node);
  }
  const plans = new Map<string, ServicePlacement>();
  for (const service of snapshot.services) {
    const constraints = constraintsOf(service);
    const eligible = active.filter((n) => nodeMatches(n, constraints)).map((n) => n.id);
    const stays = new Set(paused.filter((n) => nodeMatches(n, constraints)).map((n) => n.id));
    const current = runningByService.get(service.name) ?? new Map<number, string>();
    // The record's placement fields are in the key too: a record changed in place must not get a stale answer.
    const key = `${service.replicas}|${service.mode ?? ''}|${JSON.stringify(service.placement ?? null)}|${eligible.join(',')}|${[...stays].join(',')}|${[...current].map(([slot, node]) => `${slot}=${node}`).join(',')}`;
    const last = lastPlacement.get(service);
    if (last?.key === key) {
      plans.set(service.name, last.plan);
      continue;
    }
    const maxPerNode = isGlobal(service) ? 1 : (service.placement?.maxReplicasPerNode ?? 0);
    const pinned = pinnedSlots(current, stays, maxPerNode);
    if (isGlobal(service)) {
      const slots = placeGlobal(eligible, current, pinned);
      const plan = { slots, desired: slots.size, pending: 0 };
      lastPlacement.set(service, { key, plan });
      plans.set(service.name, plan);
      continue;
    }
    const slots = placeReplicas(service.name, service.replicas, eligible, current, pinned, maxPerNode);
    const pending = service.replicas - slots.size;
    const plan: ServicePlacement = {
      slots,
      desired: service.replicas,
      pending,
      ...(pending > 0 ? { pendingReason: pendingReason(eligible.length, constraints, maxPerNode) } : {}),
    };
    lastPlacement.set(service, { key, plan });
    plans.set(service.name, plan);
  }
  return plans;
}

/** service → (slot → node) for every service of the snapshot, over its live nodes as their availability allows. */
export function placeSnapshot(snapshot: PlacementInput): Map<string, Map<number, string>> {
  return new Map([...planPlacement(snapshot)].map(([name, plan]) => [name, plan.slots]));
}

/** The slots placed on `nodeId`, ordered by service then slot. */
export function slotsForNode(snapshot: PlacementInput, nodeId: string): SlotRef[] {
  const mine: SlotRef[] = [];
  for (const [service, placement] of placeSnapshot(snapshot)) {
    for (const [slot, node] of placement) if (node === nodeId) mine.push({ service, slot });
  }
  return mine.sort((a, b) => (a.service === b.service ? a.slot - b.slot : a.service < b.service ? -1 : 1));
}

/** `2/3 running; 1 pending: no suitable node (...)`: a service's state as `service inspect` and the CLI's waits show it. */
export function replicaStatusText(running: number, plan: Pick<ServicePlacement, 'desired' | 'pending' | 'pendingReason'>): string {
  const pending = plan.pending > 0 ? `; ${plan.pending} pending: ${plan.pendingReason ?? 'no suitable node'}` : '';
  return `${running}/${plan.desired} running${pending}`;
}

/** The service's constraints; one that cannot be parsed (records are validated, so only hand-built input) matches no node. */
function constraintsOf(service: ServiceRecord): Constraint[] {
  return (service.placement?.constraints ?? []).map((text) => {
    try {
      return parseConstraint(text);
    } catch {
      // Fail closed: a constraint we cannot read must not place tasks where the operator forbade them.
      return { attribute: 'id', operator: '==', value: '\0', text };
    }
  });
}

/** Running slots a paused node keeps (it matches the constraints), at most `maxPerNode` each (0: all), lowest first. */
function pinnedSlots(current: ReadonlyMap<number, string>, stays: ReadonlySet<string>, maxPerNode: number): Map<number, string> {
  const pinned = new Map<number, string>();
  const count = new Map<string, number>();
  for (const [slot, node] of [...current].sort((a, b) => a[0] - b[0])) {
    if (!stays.has(node)) continue;
    const c = count.get(node) ?? 0;
    if (maxPerNode > 0 && c >= maxPerNode) continue;
    count.set(node, c + 1);
    pinned.set(slot, node);
  }
  return pinned;
}

function pendingReason(eligible: number, constraints: readonly Constraint[], maxPerNode: number): string {
  const nodes = `${eligible} node${eligible === 1 ? '' : 's'}`;
  const parts = [constraints.length > 0 ? `${nodes} ${eligible === 1 ? 'matches' : 'match'} ${constraints.map((c) => c.text).join(' and ')}` : `${nodes} active`];
  if (maxPerNode > 0) parts.push(`max ${maxPerNode} per node`);
  return `no suitable node (${parts.join(', ')})`;
}
