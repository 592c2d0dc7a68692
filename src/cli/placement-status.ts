import type { Cluster } from '../model/cluster.js';
import { isGlobal, planPlacement, replicaStatusText, type ServicePlacement } from '../model/cluster-placement.js';
import * as keys from '../model/keys.js';
import type { NodeInfoRecord, NodeRecord, ServiceRecord, TaskRecord } from '../model/records.js';
import { decodeSnapshotEntry } from '../model/snapshot-entry.js';

// What `service inspect` and the CLI's waits show of placement: the same computation the agents run, over the
// nodes and this one service's tasks (not a whole snapshot, which a poll every 200 ms could not afford on a big
// cluster). Node records that fail validation are skipped, as the agents skip them.

/** One service's placement now, with how many of its tasks run. */
export interface PlacementStatus extends ServicePlacement {
  running: number;
  /** Nodes whose agent holds its lease now. */
  liveNodes: number;
  /** e.g. `2/3 running; 1 pending: no suitable node (1 node matches node.labels.zone==eu, max 1 per node)`. */
  text: string;
}

/** Reads the nodes and `service`'s tasks and computes where its slots go and what waits. */
export async function readPlacementStatus(cluster: Cluster, service: ServiceRecord, tasks?: TaskRecord[]): Promise<PlacementStatus> {
  const [nodes, nodeInfo, own] = await Promise.all([
    readRecords<NodeRecord>(cluster, keys.NODES, 'node'),
    readRecords<NodeInfoRecord>(cluster, keys.NODE_INFO, 'node-info'),
    tasks ?? cluster.listTasks({ service: service.name }),
  ]);
  const plan = planPlacement({ nodes, nodeInfo, services: [service], tasks: own }).get(service.name)!;
  const running = own.filter((t) => t.state === 'running' && t.desiredState === 'running' && !t.external).length;
  return { ...plan, running, liveNodes: nodes.length, text: replicaStatusText(running, plan) };
}

/** The name Docker shows for a task: `web.2`, or `web.<node>` for a global service's. */
export function taskDisplayName(service: Pick<ServiceRecord, 'mode'> | undefined, task: Pick<TaskRecord, 'service' | 'slot' | 'node' | 'external'>): string {
  return service && isGlobal(service) && !task.external ? `${task.service}.${task.node}` : `${task.service}.${task.slot}`;
}

async function readRecords<T>(cluster: Cluster, prefix: string, kind: 'node' | 'node-info'): Promise<T[]> {
  const { kvs } = await cluster.store.range(prefix);
  const out: T[] = [];
  for (const kv of kvs) {
    const entry = decodeSnapshotEntry(kv.key, kv.value);
    if (entry && 'record' in entry && entry.kind === kind) out.push(entry.record as T);
  }
  return out;
}

/**
 * `service`'s placement for a wait on it; undefined when the service is gone (or its record unreadable), or when
 * no node is live: then nothing can be placed yet (agents starting?), so the wait goes on until its timeout.
 */
export async function waitTarget(cluster: Cluster, service: string, tasks: TaskRecord[]): Promise<PlacementStatus | undefined> {
  const record = await cluster.getService(service).catch(() => undefined);
  const status = record ? await readPlacementStatus(cluster, record, tasks) : undefined;
  return status && status.liveNodes > 0 ? status : undefined;
}
