import { InvalidSpecError } from './model-errors.js';
import { unknownFields, NodeInfoRecordSchema, type NodeAvailability, type NodeInfoRecord, type NodeRecord } from './records.js';

// A node is two records: the leased NodeRecord says it is alive, the persistent NodeInfoRecord says what it is and
// what operators decided about it. These pure functions decide what either means together; Cluster writes.

/** A node as `meshnet node ls` shows it: live or not, with what operators set. */
export interface NodeView {
  id: string;
  name: string;
  /** Underlay address (the agent's --advertise-addr). */
  address: string;
  /** ready: its agent holds its lease now; down: it registered once and its lease ended. */
  status: 'ready' | 'down';
  availability: NodeAvailability;
  labels: Record<string, string>;
  /** The lease holding the live record, when ready. */
  lease?: string;
}

/** The registration fields an agent gives. */
export interface NodeIdentity {
  id: string;
  name: string;
  underlayIp: string;
  labels?: Record<string, string> | undefined;
}

/**
 * The persistent record to write when `node` registers, or undefined when `existing` already says it. An
 * operator's availability and labels are never overwritten; a changed name or address is taken from the agent.
 */
export function nodeInfoAtRegistration(node: NodeIdentity, existing: NodeInfoRecord | undefined, now: Date): NodeInfoRecord | undefined {
  if (existing && existing.name === node.name && existing.underlayIp === node.underlayIp) return undefined;
  const at = now.toISOString();
  return {
    ...(existing ? unknownFields(NodeInfoRecordSchema, existing) : {}),
    id: node.id,
    name: node.name,
    underlayIp: node.underlayIp,
    availability: existing?.availability ?? 'active',
    labels: existing?.labels ?? { ...(node.labels ?? {}) },
    createdAt: existing?.createdAt ?? at,
    updatedAt: at,
  };
}

/** A persistent record for a live node registered by an older meshnet that wrote none. */
export function nodeInfoFromLive(node: NodeRecord, now: Date): NodeInfoRecord {
  const at = now.toISOString();
  return { id: node.id, name: node.name, underlayIp: node.underlayIp, availability: 'active', labels: { ...(node.labels ?? {}) }, createdAt: at, updatedAt: at };
}

/** A validated `node update`. */
export interface NodeChange {
  availability?: NodeAvailability | undefined;
  labelAdd?: Record<string, string> | undefined;
  labelRm?: string[] | undefined;
}

/** `info` with `change` applied; InvalidSpecError when a label is both added and removed, or removed but absent. */
export function applyNodeChange(info: NodeInfoRecord, change: NodeChange, now: Date): NodeInfoRecord {
  const labels = { ...info.labels };
  for (const key of change.labelRm ?? []) {
    if (change.labelAdd && key in change.labelAdd) throw new InvalidSpecError(`label ${JSON.stringify(key)} is both added and removed; give it once`);
    if (!(key in labels)) throw new InvalidSpecError(`node ${info.id} has no label ${JSON.stringify(key)}; see meshnet node inspect ${info.id}`);
    delete labels[key];
  }
  Object.assign(labels, change.labelAdd ?? {});
  return { ...info, availability: change.availability ?? info.availability, labels, updatedAt: now.toISOString() };
}

/** Every node that registered and was not removed (live or not), ordered by id. */
export function nodeViews(live: readonly NodeRecord[], infos: readonly NodeInfoRecord[]): NodeView[] {
  const liveById = new Map(live.map((n) => [n.id, n]));
  const views = new Map<string, NodeView>();
  for (const info of infos) {
    const l = liveById.get(info.id);
    views.set(info.id, {
      id: info.id,
      name: info.name,
      address: l?.underlayIp ?? info.underlayIp,
      status: l ? 'ready' : 'down',
      availability: info.availability,
      labels: info.labels,
      ...(l ? { lease: l.lease } : {}),
    });
  }
  // A live node without a persistent record (an older agent) is active with the labels it registered.
  for (const l of live) {
    if (views.has(l.id)) continue;
    views.set(l.id, { id: l.id, name: l.name, address: l.underlayIp, status: 'ready', availability: 'active', labels: l.labels ?? {}, lease: l.lease });
  }
  return [...views.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Each node's availability by id; a node without a persistent record is active. */
export function availabilityById(infos: readonly NodeInfoRecord[]): (id: string) => NodeAvailability {
  const byId = new Map(infos.map((i) => [i.id, i.availability]));
  return (id) => byId.get(id) ?? 'active';
}
