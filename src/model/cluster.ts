import { isEncrypted } from '../overlay/encryption-plan.js';
import { underlayFamily } from '../overlay/underlay-address.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { silentLogger, type Logger } from '../log/logger.js';
import type { Compare, KeyValue, KvStore, LeaseId, TxnOp, WatchEvent, WatchHandle, WatchOptions } from '../store/kv-store.js';
import { LeaseNotFoundError } from '../store/store-errors.js';
import { AddressQuarantine, DEFAULT_QUARANTINE_SECONDS, isQuarantined, type ReleasedAddress } from './address-quarantine.js';
import {
  checkOverlaySubnet,
  checkSubnetFree,
  chooseAddress,
  choosePort,
  chooseSubnet,
  chooseVni,
  gatewayOf,
  INGRESS_NETWORK,
  INGRESS_SUBNET,
} from './ipam.js';
import { macFromIpv4 } from './ipv4.js';
import { ingressUpgrade, networkIpv6Fields, serviceVips6, taskAddressIpv6 } from './dual-stack.js';
import * as keys from './keys.js';
import {
  AlreadyExistsError,
  ContentionError,
  InvalidSpecError,
  NetworkInUseError,
  NodeLiveError,
  NotFoundError,
  PortConflictError,
  RecordInvalidError,
  TaskReplacedError,
} from './model-errors.js';
import {
  decodeRecord,
  encodeRecord,
  nameProblem,
  NetworkRecordSchema,
  NetworkSpecSchema,
  NodeInfoRecordSchema,
  NodeRecordSchema,
  NodeSpecSchema,
  NodeUpdateSchema,
  PortRecordSchema,
  ServiceRecordSchema,
  ServiceSpecSchema,
  ServiceUpdateSchema,
  TaskRecordSchema,
  unknownFields,
  validate,
  type NetworkRecord,
  type NetworkSpec,
  type NodeInfoRecord,
  type NodeRecord,
  type NodeSpec,
  type NodeUpdate,
  type NormalizedServiceSpec,
  type PortRecord,
  type ServiceRecord,
  type ServiceSpec,
  type ServiceUpdate,
  type TaskRecord,
} from './records.js';
import { decodeSnapshotEntry, type InvalidRecord } from './snapshot-entry.js';
import { rollbackSpec, rolloutFields, withRollout, type SpecWithRollout } from './service-update-spec.js';
import { positionOf, promoted, removalOf } from './successor-task.js';
import type { UpdateStatusRecord } from './rollout-records.js';
import { aliasConflict, aliasesAfterUpdate, aliasFields, assertAliasSpec, normalizeAliases } from './service-aliases.js';
import { historyAppendTxn, removeServiceHistory, restartError, type FinishKind } from './task-history.js';
import { applyNodeChange, nodeInfoAtRegistration, nodeInfoFromLive, nodeViews, type NodeIdentity, type NodeView } from './node-info.js';
import { maxSlotOf, placementAfterUpdate, placementAtCreate, presentPlacement } from './service-placement.js';
import { lifecycleAfterUpdate, lifecycleFields } from './service-health.js';

// Cluster operations over a KvStore, shared by the CLI and the agents. Every allocation is a compare-and-swap
// transaction: read what is taken, choose, commit guarded by the revisions read (or `absent` for claim keys);
// a lost race re-reads and tries again, so concurrent writers never hand out the same subnet, VNI, IP or port.

/** Where the agent bind-mounts task namespaces unless told otherwise (same as src/sandbox). */
export const DEFAULT_SANDBOX_DIR = '/run/meshnet/netns';

/** Tuning of a Cluster. */
export interface ClusterOptions {
  /** Directory of task network namespaces, recorded in each task's `sandbox`. */
  sandboxDir?: string;
  /** Clock for `updatedAt` (tests). */
  now?: () => Date;
  /** Compare-and-swap rounds before giving up with ContentionError. */
  maxAttempts?: number;
  /**
   * How long an address released by a removed or replaced task (or a released VIP) stays unavailable, so hosts
   * that still balance to it have dropped it first (default 30 s: two 10 s node leases plus margin; 0: at once).
   */
  addressQuarantineSeconds?: number;
  /** Where node registration events go (default: nowhere). */
  log?: Logger;
}

/** The whole intent at one revision, as plain data for the agent's pure desired-state functions. */
export interface ClusterSnapshot {
  revision: number;
  /** Live nodes only (their agent holds its lease): placement and the data plane use these. */
  nodes: NodeRecord[];
  /** Every node's persistent record, live or not (availability, labels), ordered by id. */
  nodeInfo: NodeInfoRecord[];
  networks: NetworkRecord[];
  services: ServiceRecord[];
  tasks: TaskRecord[];
  /**
   * Records that failed validation (left out above), with their key, kind and reason. They are not deletions:
   * the agent logs them and keeps acting on what it last knew of those keys.
   */
  invalid: InvalidRecord[];
}

/** A service with its tasks as stored, for `service inspect`; records that cannot be read are listed in `invalid`. */
export interface ServiceView {
  /** Undefined when the service record is missing or invalid. */
  service: ServiceRecord | undefined;
  tasks: TaskRecord[];
  invalid: InvalidRecord[];
}

/** A live node registration; its lease is kept alive until close(). */
export interface NodeRegistration {
  readonly node: NodeRecord;
  /** The lease currently holding the node record (changes if the lease had to be re-granted). */
  lease(): LeaseId;
  /**
   * True when registerNode took over `resumeLease`: the node record and every key the previous agent put under
   * that lease were kept as they were. False: the node holds a fresh lease, and keys held under the old one (if
   * it is still alive) vanish when it expires, so put them again under lease().
   */
  readonly resumed: boolean;
  /** Stops the keepalive and revokes the lease, removing the node record. */
  close(): Promise<void>;
  /** Stops the keepalive only: the node stays registered until its lease runs out (an agent restart takes it over). */
  stop(): void;
}

/** Options of registerNode. */
export interface RegisterNodeOptions {
  /** Lease TTL; the node disappears this long after its agent stops refreshing. */
  ttlSeconds?: number;
  /** Called when a keepalive fails for a reason other than an expired lease (which is repaired). */
  onKeepAliveError?: (err: Error) => void;
  /**
   * A lease a previous agent of this node held (persisted across restarts). When it is still alive and holds this
   * node's record (same id and underlay address) it is kept alive and nothing is re-created, so no key changes
   * revision and peers see nothing; otherwise the node registers under a fresh lease.
   */
  resumeLease?: LeaseId;
  /**
   * Called after the lease ran out (the keepalive found it gone) and the node record was put again under
   * `lease`: everything else held under `previous` is gone too, so put it back under `lease`.
   */
  onLeaseReplaced?: (lease: LeaseId, previous: LeaseId) => void;
}

/** What removeNode did. */
export interface RemovedNode {
  id: string;
  /** True when the node was live (removed with force: its lease was revoked). */
  wasLive: boolean;
  /** Task records of the node that were removed (no agent would have cleaned them up). */
  removedTasks: number;
  /** The node's ingress address, released into quarantine. */
  ingressAddress?: string;
}

const IngressEndpointAddressSchema = z.looseObject({ ip: z.string() });

/** Filter of listTasks. */
export interface TaskFilter {
  service?: string;
  node?: string;
}

/** State changes an agent reports for its task. */
export interface TaskStateUpdate {
  state?: TaskRecord['state'];
  desiredState?: TaskRecord['desiredState'];
  restarts?: number;
  message?: string;
  /** The task's health; null removes it (its service no longer has a health check). */
  health?: TaskRecord['health'] | null;
  /** Why the process's last run ended (`exit 1`), for the history entry a restart leaves; not stored on the task. */
  lastExit?: string;
}

const SubnetTableSchema = z.record(z.string(), z.string());
const NetUsersSchema = z.array(z.string());

interface Read<T> {
  record: T;
  kv: KeyValue;
}

/** Guard that `key` is still exactly as read (or still absent). */
function unchanged(key: string, kv: KeyValue | undefined): Compare {
  return kv === undefined ? { key, absent: true } : { key, modRevision: kv.modRevision };
}

function newTaskId(): string {
  return randomBytes(12).toString('hex');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function byServiceThenSlot(a: TaskRecord, b: TaskRecord): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  return a.slot - b.slot;
}

/** Networks a service's VIPs and tasks attach to: its own, plus ingress when it publishes in ingress mode. */
export function attachedNetworks(service: { networks: readonly string[]; ports: readonly { mode: 'ingress' | 'host' }[] }): string[] {
  const usesIngress = service.ports.some((p) => p.mode === 'ingress');
  return usesIngress ? [...service.networks, INGRESS_NETWORK] : [...service.networks];
}

function portClaimKeys(ports: readonly PortRecord[], healthPort: number | undefined): string[] {
  const claims = ports.map((p) => keys.portKey(p.protocol, p.published));
  if (healthPort !== undefined) claims.push(keys.portKey('tcp', healthPort));
  return claims;
}

/** Intent of a meshnet cluster stored in a KvStore. */
export class Cluster {
  private readonly sandboxDir: string;
  private readonly now: () => Date;
  private readonly maxAttempts: number;
  private readonly quarantine: AddressQuarantine;
  private readonly log: Logger;

  constructor(
    readonly store: KvStore,
    options: ClusterOptions = {},
  ) {
    this.sandboxDir = options.sandboxDir ?? DEFAULT_SANDBOX_DIR;
    this.now = options.now ?? (() => new Date());
    this.maxAttempts = options.maxAttempts ?? 200;
    const quarantineSeconds = options.addressQuarantineSeconds ?? DEFAULT_QUARANTINE_SECONDS;
    if (!Number.isFinite(quarantineSeconds) || quarantineSeconds < 0) {
      throw new InvalidSpecError(`addressQuarantineSeconds must be a number of seconds >= 0, got ${quarantineSeconds}`);
    }
    this.quarantine = new AddressQuarantine(store, quarantineSeconds);
    this.log = (options.log ?? silentLogger()).child({ component: 'cluster' });
  }

  // ---- plumbing ----

  private async read<S extends z.ZodType>(schema: S, kind: string, key: string): Promise<Read<z.output<S>> | undefined> {
    const kv = await this.store.get(key);
    return kv === undefined ? undefined : { record: decodeRecord(schema, kind, key, kv.value), kv };
  }

  private async list<S extends z.ZodType>(schema: S, kind: string, prefix: string): Promise<z.output<S>[]> {
    const { kvs } = await this.store.range(prefix);
    return kvs.map((kv) => decodeRecord(schema, kind, kv.key, kv.value));
  }

  /** Runs `attempt` until it returns a value; `undefined` means "lost a race, read again". */
  private async retrying<T>(operation: string, attempt: (n: number) => Promise<T | undefined>): Promise<T> {
    for (let n = 0; n < this.maxAttempts; n++) {
      const result = await attempt(n);
      if (result !== undefined) return result;
      // Jittered backoff so racing writers stop colliding in lockstep.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** n, 25)));
    }
    throw new ContentionError(operation, this.maxAttempts);
  }

  private async commit(compare: Compare[], success: TxnOp[]): Promise<boolean> {
    try {
      return (await this.store.txn({ compare, success })).succeeded;
    } catch (err) {
      // The only leases Cluster txns put keys under are quarantine leases: one that vanished is re-granted by
      // the caller's next round.
      if (!(err instanceof LeaseNotFoundError)) throw err;
      this.quarantine.forget();
      return false;
    }
  }

  /** Ops releasing the addresses a task held, into quarantine. */
  private releaseTaskAddresses(task: TaskRecord): Promise<TxnOp[]> {
    return this.quarantine.releaseOps(Object.entries(task.addresses).map(([network, { ip }]) => ({ network, ip, owner: `task:${task.id}` })));
  }

  private async usedIps(network: string): Promise<Set<string>> {
    const prefix = keys.networkIpsPrefix(network);
    const { kvs } = await this.store.range(prefix);
    return new Set(kvs.map((kv) => kv.key.slice(prefix.length)));
  }

  private async netUsers(network: string): Promise<{ kv: KeyValue | undefined; users: string[] }> {
    const key = keys.netusersKey(network);
    const kv = await this.store.get(key);
    return { kv, users: kv ? decodeRecord(NetUsersSchema, 'network users', key, kv.value) : [] };
  }

  // ---- nodes ----

  /**
   * Registers a node under a lease and keeps the lease alive until close(); with `resumeLease` it takes over the
   * registration a previous agent of this node left behind (see RegisterNodeOptions).
   */
  async registerNode(spec: NodeSpec, options: RegisterNodeOptions = {}): Promise<NodeRegistration> {
    const input = validate(NodeSpecSchema, 'node spec', 'for registerNode', spec);
    const ttlSeconds = options.ttlSeconds ?? 10;
    const id = input.id ?? randomBytes(6).toString('hex');
    const key = keys.nodeKey(id);
    const recordFor = (lease: LeaseId, kept: Record<string, unknown> = {}): NodeRecord => ({
      ...kept,
      id,
      name: input.name,
      underlayIp: input.underlayIp,
      lease,
      ...(input.labels ? { labels: input.labels } : {}),
    });
    const identity: NodeIdentity = { id, name: input.name, underlayIp: input.underlayIp, labels: input.labels };
    const register = async (): Promise<{ node: NodeRecord; lease: LeaseId }> => {
      // The persistent record first: a node that shows up live has one (`node rm` of it is undone here too).
      await this.ensureNodeInfo(identity);
      const lease = await this.store.grantLease(ttlSeconds);
      const node = recordFor(lease);
      await this.store.put(key, encodeRecord(NodeRecordSchema, 'node', key, node), { lease });
      return { node, lease };
    };
    const resume = async (lease: LeaseId): Promise<{ node: NodeRecord; lease: LeaseId } | undefined> => {
      const kv = await this.store.get(key);
      if (kv === undefined || kv.lease !== lease) return undefined;
      const entry = decodeSnapshotEntry(key, kv.value);
      if (entry === undefined || !('record' in entry) || entry.kind !== 'node') return undefined;
      const held = entry.record;
      if (held.id !== id || held.underlayIp !== input.underlayIp || held.lease !== lease) return undefined;
      try {
        await this.store.keepAlive(lease);
      } catch (err) {
        if (err instanceof LeaseNotFoundError) return undefined;
        throw err;
      }
      await this.ensureNodeInfo(identity);
      const node = recordFor(lease, unknownFields(NodeRecordSchema, held));
      // A changed name or label set is written in place, on the same lease; an unchanged record is not touched.
      if (held.name !== input.name || JSON.stringify(held.labels ?? null) !== JSON.stringify(input.labels ?? null)) {
        const ok = await this.commit([{ key, modRevision: kv.modRevision }], [{ type: 'put', key, value: encodeRecord(NodeRecordSchema, 'node', key, node), lease }]);
        if (!ok) return undefined;
      }
      return { node, lease };
    };

    const resumed = options.resumeLease !== undefined ? await resume(options.resumeLease) : undefined;
    let current = resumed ?? (await register());
    this.log.info({ event: resumed ? 'cluster.node.lease_resumed' : 'cluster.node.registered', node: id, lease: current.lease, ...(options.resumeLease !== undefined && !resumed ? { staleLease: options.resumeLease } : {}) });
    let closed = false;
    let busy = false;
    const refresh = async (): Promise<void> => {
      try {
        await this.store.keepAlive(current.lease);
      } catch (err) {
        if (closed || !(err instanceof LeaseNotFoundError)) throw err;
        // The agent stalled longer than the TTL and its node vanished: register again under a fresh lease.
        const previous = current.lease;
        this.log.warn({ event: 'cluster.node.lease_lost', node: id, lease: previous });
        current = await register();
        this.log.info({ event: 'cluster.node.lease_replaced', node: id, lease: current.lease, previous });
        options.onLeaseReplaced?.(current.lease, previous);
      }
    };
    const timer = setInterval(() => {
      if (busy || closed) return;
      busy = true;
      refresh()
        .catch((err: unknown) => {
          if (closed) return;
          if (options.onKeepAliveError) options.onKeepAliveError(err as Error);
          else this.log.warn({ event: 'cluster.node.keepalive_failed', node: id, error: String(err) });
        })
        .finally(() => {
          busy = false;
        });
    }, Math.max(100, (ttlSeconds * 1000) / 3));
    return {
      get node() {
        return current.node;
      },
      lease: () => current.lease,
      resumed: resumed !== undefined,
      close: async () => {
        closed = true;
        clearInterval(timer);
        await this.store.revokeLease(current.lease);
      },
      stop: () => {
        closed = true;
        clearInterval(timer);
      },
    };
  }

  /**
   * Writes the node's persistent record where it is missing or names another address; an operator's
   * availability and labels are kept. A stored record this meshnet cannot read is left alone (logged).
   */
  private async ensureNodeInfo(node: NodeIdentity): Promise<void> {
    const key = keys.nodeInfoKey(node.id);
    await this.retrying(`registerNode(${node.id})`, async () => {
      const kv = await this.store.get(key);
      let existing: NodeInfoRecord | undefined;
      if (kv) {
        try {
          existing = decodeRecord(NodeInfoRecordSchema, 'node info', key, kv.value);
        } catch (err) {
          if (!(err instanceof RecordInvalidError)) throw err;
          this.log.error({ event: 'cluster.node.info_invalid', node: node.id, error: err.message, hint: `fix it with meshnet node update ${node.id}, or remove it with meshnet node rm` });
          return true;
        }
      }
      const next = nodeInfoAtRegistration(node, existing, this.now());
      if (next === undefined) return true;
      const ok = await this.commit([unchanged(key, kv)], [{ type: 'put', key, value: encodeRecord(NodeInfoRecordSchema, 'node info', key, next) }]);
      if (ok) this.log.info({ event: existing ? 'cluster.node.info_updated' : 'cluster.node.info_created', node: node.id, underlayIp: next.underlayIp, availability: next.availability });
      return ok ? true : undefined;
    });
  }

  /** Live nodes (those whose agent keeps its lease alive). */
  async listNodes(): Promise<NodeRecord[]> {
    return this.list(NodeRecordSchema, 'node', keys.NODES);
  }

  /** One live node, or undefined. */
  async getNode(id: string): Promise<NodeRecord | undefined> {
    return (await this.read(NodeRecordSchema, 'node', keys.nodeKey(id)))?.record;
  }

  /** Every node's persistent record, live or not. */
  async listNodeInfo(): Promise<NodeInfoRecord[]> {
    return this.list(NodeInfoRecordSchema, 'node info', keys.NODE_INFO);
  }

  /** Every node that registered and was not removed, with its status (ready/down) and availability. */
  async nodeViews(): Promise<NodeView[]> {
    const [live, infos] = await Promise.all([this.listNodes(), this.listNodeInfo()]);
    return nodeViews(live, infos);
  }

  /** One node's view, or undefined when no record of it exists. */
  async nodeView(id: string): Promise<NodeView | undefined> {
    const [live, info] = await Promise.all([this.getNode(id), this.read(NodeInfoRecordSchema, 'node info', keys.nodeInfoKey(id))]);
    return nodeViews(live ? [live] : [], info ? [info.record] : [])[0];
  }

  /** Changes a node's availability and labels (`meshnet node update`); agents see it through their watch. */
  async updateNode(id: string, update: NodeUpdate): Promise<NodeInfoRecord> {
    const problem = nameProblem('node', id);
    if (problem) throw new InvalidSpecError(problem);
    const change = validate(NodeUpdateSchema, 'node update', `for ${id}`, update);
    const key = keys.nodeInfoKey(id);
    return this.retrying(`updateNode(${id})`, async () => {
      const [info, live] = await Promise.all([this.read(NodeInfoRecordSchema, 'node info', key), this.read(NodeRecordSchema, 'node', keys.nodeKey(id))]);
      const base = info?.record ?? (live ? nodeInfoFromLive(live.record, this.now()) : undefined);
      if (!base) throw new NotFoundError('node', id, 'see meshnet node ls');
      const next = applyNodeChange(base, change, this.now());
      const ok = await this.commit([unchanged(key, info?.kv)], [{ type: 'put', key, value: encodeRecord(NodeInfoRecordSchema, 'node info', key, next) }]);
      return ok ? next : undefined;
    });
  }

  /**
   * Removes a node from the cluster (`meshnet node rm`): its persistent record, its ingress endpoint and that
   * address's claim (into quarantine), and the task records it left behind. A live node is refused with
   * NodeLiveError unless `force`, which also revokes its lease: its agent, if it still runs, registers again.
   */
  async removeNode(id: string, options: { force?: boolean } = {}): Promise<RemovedNode> {
    const problem = nameProblem('node', id);
    if (problem) throw new InvalidSpecError(problem);
    const infoKey = keys.nodeInfoKey(id);
    const endpointKey = keys.ingressEndpointKey(id);
    const removed = await this.retrying(`removeNode(${id})`, async () => {
      const [liveKv, infoKv, endpointKv] = await Promise.all([this.store.get(keys.nodeKey(id)), this.store.get(infoKey), this.store.get(endpointKey)]);
      if (!liveKv && !infoKv && !endpointKv) throw new NotFoundError('node', id, 'see meshnet node ls');
      if (liveKv && !options.force) throw new NodeLiveError(id);
      const compare: Compare[] = [unchanged(keys.nodeKey(id), liveKv), unchanged(infoKey, infoKv), unchanged(endpointKey, endpointKv)];
      const ops: TxnOp[] = [];
      if (infoKv) ops.push({ type: 'delete', key: infoKey });
      let ingressAddress: string | undefined;
      if (endpointKv) {
        ops.push({ type: 'delete', key: endpointKey });
        const ip = IngressEndpointAddressSchema.safeParse(safeJson(endpointKv.value)).data?.ip;
        const owner = `node:${id}`;
        const claim = ip === undefined ? undefined : await this.store.get(keys.ipKey(INGRESS_NETWORK, ip));
        if (ip !== undefined && claim?.value === owner) {
          compare.push(unchanged(claim.key, claim));
          ops.push(...(await this.quarantine.releaseOps([{ network: INGRESS_NETWORK, ip, owner }])));
          ingressAddress = ip;
        }
      }
      const lease = liveKv?.lease;
      if (liveKv) ops.push({ type: 'delete', key: liveKv.key });
      if (!(await this.commit(compare, ops))) return undefined;
      return { lease, ingressAddress };
    });
    // Its keys (status, ...) go with the lease; a lease already gone is what we want.
    if (removed.lease !== undefined) await this.store.revokeLease(removed.lease).catch((err: unknown) => {
      if (!(err instanceof LeaseNotFoundError)) throw err;
    });
    // Slots other agents claim replace these records anyway; what is left (attached tasks, drained ones) goes here.
    let removedTasks = 0;
    for (const t of await this.listTasks({ node: id })) if (await this.removeTask(t.service, t.slot, t.id)) removedTasks++;
    this.log.info({ event: 'cluster.node.removed', node: id, wasLive: removed.lease !== undefined, removedTasks, ingressAddress: removed.ingressAddress });
    return { id, wasLive: removed.lease !== undefined, removedTasks, ...(removed.ingressAddress !== undefined ? { ingressAddress: removed.ingressAddress } : {}) };
  }

  // ---- networks ----

  /** Creates an overlay network, allocating a subnet (unless given), a VNI and the gateway address. */
  async createNetwork(spec: NetworkSpec): Promise<NetworkRecord> {
    const input = validate(NetworkSpecSchema, 'network spec', `for ${JSON.stringify(spec?.name)}`, spec);
    if (input.subnet !== undefined) checkOverlaySubnet(input.subnet, input.ingress);
    if (input.ingress) {
      const other = (await this.listNetworks()).find((n) => n.ingress && n.name !== input.name);
      if (other) throw new InvalidSpecError(`network ${JSON.stringify(other.name)} is already the ingress network; a cluster has one`);
    }
    if (isEncrypted(input.options)) {
      // Agents on a v6 underlay refuse encrypted overlays (ESP there is v4 only): say so now, not in their logs.
      const v6 = (await this.listNodes()).find((n) => underlayFamily(n.underlayIp) === 'ipv6');
      if (v6) throw new InvalidSpecError(`network ${JSON.stringify(input.name)}: encrypted overlays need an IPv4 underlay, and node ${v6.id} advertises ${v6.underlayIp}; create it without --opt encrypted, or advertise IPv4 addresses`);
    }
    const key = keys.networkKey(input.name);
    return this.retrying(`createNetwork(${input.name})`, async () => {
      const [existing, tableKv, { kvs: vniKvs }] = await Promise.all([this.store.get(key), this.store.get(keys.SUBNETS_KEY), this.store.range(keys.VNIS)]);
      if (existing !== undefined) throw new AlreadyExistsError('network', input.name);
      const table = tableKv ? decodeRecord(SubnetTableSchema, 'subnet table', keys.SUBNETS_KEY, tableKv.value) : {};
      const wanted = input.subnet ?? (input.ingress ? INGRESS_SUBNET : undefined);
      if (wanted !== undefined) checkSubnetFree(wanted, table);
      const subnet = wanted ?? chooseSubnet(table);
      const vni = chooseVni(new Set(vniKvs.map((kv) => Number(kv.key.slice(keys.VNIS.length)))));
      const gateway = gatewayOf(subnet);
      const v6 = networkIpv6Fields(input, table);
      const record: NetworkRecord = { name: input.name, driver: 'overlay', subnet, gateway, vni, ingress: input.ingress, options: input.options, ...v6 };
      const ok = await this.commit(
        [
          { key, absent: true },
          unchanged(keys.SUBNETS_KEY, tableKv),
          { key: keys.vniKey(vni), absent: true },
          { key: keys.ipKey(input.name, gateway), absent: true },
        ],
        [
          { type: 'put', key, value: encodeRecord(NetworkRecordSchema, 'network', key, record) },
          { type: 'put', key: keys.SUBNETS_KEY, value: JSON.stringify({ ...table, [subnet]: input.name, ...(v6.subnet6 ? { [v6.subnet6]: input.name } : {}) }) },
          { type: 'put', key: keys.vniKey(vni), value: input.name },
          { type: 'put', key: keys.ipKey(input.name, gateway), value: 'gateway' },
        ],
      );
      return ok ? record : undefined;
    });
  }

  /** The ingress network, created (10.255.0.0/16) if missing. */
  async ensureIngressNetwork(): Promise<NetworkRecord> {
    const existing = await this.getNetwork(INGRESS_NETWORK);
    if (existing) return existing;
    try {
      return await this.createNetwork({ name: INGRESS_NETWORK, ingress: true });
    } catch (err) {
      // Another writer created it between our read and our commit.
      if (err instanceof AlreadyExistsError) return (await this.getNetwork(INGRESS_NETWORK))!;
      throw err;
    }
  }

  /** Makes the ingress network dual stack once a service publishing through it is on a dual-stack network. */
  private async ensureIngressDualStack(ingress: NetworkRecord, networks: readonly string[]): Promise<void> {
    const attached = await Promise.all(networks.map((n) => this.getNetwork(n)));
    if (ingressUpgrade(ingress, attached, {}) === undefined) return;
    const key = keys.networkKey(ingress.name);
    await this.retrying(`ensureIngressDualStack(${ingress.name})`, async () => {
      const [net, tableKv] = await Promise.all([this.read(NetworkRecordSchema, 'network', key), this.store.get(keys.SUBNETS_KEY)]);
      if (!net) return true;
      const table = tableKv ? decodeRecord(SubnetTableSchema, 'subnet table', keys.SUBNETS_KEY, tableKv.value) : {};
      const next = ingressUpgrade(net.record, attached, table);
      if (next === undefined) return true;
      const ops: TxnOp[] = [
        { type: 'put', key, value: encodeRecord(NetworkRecordSchema, 'network', key, next) },
        { type: 'put', key: keys.SUBNETS_KEY, value: JSON.stringify({ ...table, [next.subnet6!]: next.name }) },
      ];
      return (await this.commit([unchanged(key, net.kv), unchanged(keys.SUBNETS_KEY, tableKv)], ops)) ? true : undefined;
    });
  }

  /** All networks. */
  async listNetworks(): Promise<NetworkRecord[]> {
    return this.list(NetworkRecordSchema, 'network', keys.NETWORKS);
  }

  /** One network, or undefined. */
  async getNetwork(name: string): Promise<NetworkRecord | undefined> {
    return (await this.read(NetworkRecordSchema, 'network', keys.networkKey(name)))?.record;
  }

  /** Removes a network and releases its subnet, VNI and addresses; refused while services use it. */
  async removeNetwork(name: string): Promise<void> {
    const key = keys.networkKey(name);
    await this.retrying(`removeNetwork(${name})`, async () => {
      const net = await this.read(NetworkRecordSchema, 'network', key);
      if (!net) throw new NotFoundError('network', name);
      const { kv: usersKv, users } = await this.netUsers(name);
      if (users.length > 0) throw new NetworkInUseError(name, users);
      const tableKv = await this.store.get(keys.SUBNETS_KEY);
      const table = tableKv ? decodeRecord(SubnetTableSchema, 'subnet table', keys.SUBNETS_KEY, tableKv.value) : {};
      const remaining = Object.fromEntries(Object.entries(table).filter(([, owner]) => owner !== name));
      const ops: TxnOp[] = [
        { type: 'delete', key },
        { type: 'put', key: keys.SUBNETS_KEY, value: JSON.stringify(remaining) },
        { type: 'delete', key: keys.vniKey(net.record.vni) },
        // Quarantined addresses keep their lease: a network re-created at once must not hand them out either.
        ...(await this.store.range(keys.networkIpsPrefix(name))).kvs
          .filter((kv) => !isQuarantined(kv.value))
          .map((kv): TxnOp => ({ type: 'delete', key: kv.key })),
      ];
      if (usersKv) ops.push({ type: 'delete', key: usersKv.key });
      const compare = [unchanged(key, net.kv), unchanged(keys.netusersKey(name), usersKv), unchanged(keys.SUBNETS_KEY, tableKv)];
      return (await this.commit(compare, ops)) ? true : undefined;
    });
  }

  // ---- services ----

  /** Creates a service: validates, allocates VIPs (incl. ingress when publishing in ingress mode) and ports. */
  async createService(spec: ServiceSpec): Promise<ServiceRecord> {
    const validated = validate(ServiceSpecSchema, 'service spec', `for ${JSON.stringify(spec?.name)}`, spec);
    assertAliasSpec(validated);
    // A global service has no replica count of its own: 0 keeps `replicas` meaningful to readers that predate modes.
    const placed = placementAtCreate(validated.name, { ...validated, replicas: spec.replicas });
    const { mode: _mode, placement: _placement, ...rest } = validated;
    const input = { ...rest, ...placed, ...(placed.mode === 'global' ? { replicas: 0 } : {}) } as NormalizedServiceSpec;
    return this.saveService(input.name, 'create', () => input);
  }

  /** Changes replicas, command, env, lb, ports or healthPort; scaling down removes the surplus tasks. */
  async updateService(name: string, update: ServiceUpdate): Promise<ServiceRecord> {
    const input = validate(ServiceUpdateSchema, 'service update', `for ${JSON.stringify(name)}`, update);
    const saved = await this.saveService(name, 'update', (current) => {
      const base = current!;
      const env = input.env ?? base.env;
      // New ports without a health port get a fresh one if they need it; otherwise the old one carries over.
      const healthPort = input.healthPort ?? base.healthPort;
      const next = {
        name: base.name,
        networks: input.networks ?? base.networks,
        endpointMode: base.endpointMode,
        ports: input.ports ?? base.ports,
        replicas: input.replicas ?? base.replicas,
        command: input.command ?? base.command,
        lb: input.lb ?? base.lb,
        ...(env !== undefined ? { env } : {}),
        ...(healthPort !== undefined ? { healthPort } : {}),
        ...privilegeFields(base),
        ...placementAfterUpdate(base, input),
        ...aliasesAfterUpdate({ ...base, networks: input.networks ?? base.networks }, input.aliases),
        ...lifecycleAfterUpdate(base, input),
      } as NormalizedServiceSpec;
      return withRollout(base, next, input, this.now());
    });
    // Surplus tasks on live nodes are drained by their agents (weight 0, then removal after the drain
    // deadline); only those whose node is gone, which no agent will drain, are removed here.
    const live = new Set((await this.listNodes()).map((n) => n.id));
    for (const task of await this.listTasks({ service: name })) {
      if (saved.mode !== 'global' && task.slot > saved.replicas && !task.external && !live.has(task.node)) await this.removeTask(name, task.slot, task.id);
    }
    return saved;
  }

  /** Rolls `name` back to its previous spec through the rolling-update machinery (see rollbackSpec). */
  async rollbackService(name: string, reason = 'manually requested rollback', expectedVersion?: number): Promise<ServiceRecord> {
    return this.saveService(name, 'update', (current) => rollbackSpec(current!, reason, this.now(), expectedVersion));
  }

  /** Rewrites `name`'s update status by compare-and-swap; `change` returns undefined when nothing is to be written. */
  async setUpdateStatus(name: string, change: (service: ServiceRecord) => UpdateStatusRecord | undefined): Promise<ServiceRecord | undefined> {
    const key = keys.serviceKey(name);
    const result = await this.retrying(`setUpdateStatus(${name})`, async () => {
      const read = await this.read(ServiceRecordSchema, 'service', key);
      const status = read && change(read.record);
      if (!read || !status) return { record: undefined };
      const record: ServiceRecord = { ...read.record, updateStatus: status };
      const ok = await this.commit([unchanged(key, read.kv)], [{ type: 'put', key, value: encodeRecord(ServiceRecordSchema, 'service', key, record) }]);
      return ok ? { record } : undefined;
    });
    return result.record;
  }

  /** Sets the replica count. */
  async scaleService(name: string, replicas: number): Promise<ServiceRecord> {
    return this.updateService(name, { replicas });
  }

  private checkServiceSpec(spec: NormalizedServiceSpec): void {
    if (new Set(spec.networks).size !== spec.networks.length) throw new InvalidSpecError(`service ${spec.name} lists a network twice`);
    if (spec.networks.includes(INGRESS_NETWORK)) {
      throw new InvalidSpecError(`service ${spec.name}: do not list the ${INGRESS_NETWORK} network; publishing a port in ingress mode attaches it`);
    }
    if (spec.endpointMode === 'dnsrr' && spec.ports.some((p) => p.mode === 'ingress')) {
      throw new InvalidSpecError(
        `service ${spec.name}: endpoint mode dnsrr has no VIP, so it cannot publish in ingress mode; publish with mode "host" or use endpoint mode "vip"`,
      );
    }
    const seen = new Set<string>();
    for (const p of spec.ports) {
      if (!p.published) continue;
      const id = `${p.published}/${p.protocol}`;
      if (seen.has(id)) throw new InvalidSpecError(`service ${spec.name} publishes ${id} twice`);
      seen.add(id);
    }
  }

  private async saveService(
    name: string,
    mode: 'create' | 'update',
    build: (current: ServiceRecord | undefined) => SpecWithRollout,
  ): Promise<ServiceRecord> {
    const key = keys.serviceKey(name);
    const probe = await this.read(ServiceRecordSchema, 'service', key);
    if (mode === 'create' && probe) throw new AlreadyExistsError('service', name);
    if (mode === 'update' && !probe) throw new NotFoundError('service', name);
    const first = build(probe?.record);
    this.checkServiceSpec(first);
    if (first.ports.some((p) => p.mode === 'ingress')) await this.ensureIngressDualStack(await this.ensureIngressNetwork(), first.networks);

    return this.retrying(`${mode}Service(${name})`, async (attempt) => {
      const read = await this.read(ServiceRecordSchema, 'service', key);
      if (mode === 'create' && read) throw new AlreadyExistsError('service', name);
      if (mode === 'update' && !read) throw new NotFoundError('service', name);
      const current = read?.record;
      const spec = build(current);
      this.checkServiceSpec(spec);
      await this.checkAliasConflicts(spec, current);
      const compare: Compare[] = [unchanged(key, read?.kv)];
      const ops: TxnOp[] = [];

      // Networks must exist, and stay while we attach: their user lists are part of the guard. Reads run in
      // parallel to keep the window between reading and committing (and so the chance of losing a race) short.
      const attached = attachedNetworks(spec);
      const before = current ? attachedNetworks(current) : [];
      const membershipChanges = [...new Set([...attached, ...before])].filter((n) => attached.includes(n) !== before.includes(n));
      const [netReads, userReads, usedByNetwork, { kvs: portKvs }] = await Promise.all([
        Promise.all(attached.map((n) => this.read(NetworkRecordSchema, 'network', keys.networkKey(n)))),
        Promise.all(membershipChanges.map((n) => this.netUsers(n))),
        Promise.all(attached.map((n) => (spec.endpointMode === 'vip' && current?.vips[n] === undefined ? this.usedIps(n) : new Set<string>()))),
        this.store.range(keys.PORTS),
      ]);
      const networks = new Map<string, NetworkRecord>();
      attached.forEach((netName, i) => {
        const net = netReads[i];
        if (!net) throw new NotFoundError('network', netName, `create it first: meshnet network create ${netName}`);
        networks.set(netName, net.record);
        compare.push(unchanged(net.kv.key, net.kv));
      });
      membershipChanges.forEach((netName, i) => {
        const { kv: usersKv, users } = userReads[i]!;
        const next = new Set(users);
        if (attached.includes(netName)) next.add(name);
        else next.delete(name);
        const usersKey = keys.netusersKey(netName);
        compare.push(unchanged(usersKey, usersKv));
        ops.push(next.size > 0 ? { type: 'put', key: usersKey, value: JSON.stringify([...next].sort()) } : { type: 'delete', key: usersKey });
      });

      // VIPs: keep those already held, claim one per newly attached network, release the rest.
      const vips: Record<string, string> = {};
      if (spec.endpointMode === 'vip') {
        for (const netName of attached) {
          const held = current?.vips[netName];
          if (held !== undefined) {
            vips[netName] = held;
            continue;
          }
          const ip = chooseAddress(networks.get(netName)!.subnet, usedByNetwork[attached.indexOf(netName)]!, netName, attempt);
          vips[netName] = ip;
          compare.push({ key: keys.ipKey(netName, ip), absent: true });
          ops.push({ type: 'put', key: keys.ipKey(netName, ip), value: `vip:${name}` });
        }
      }
      const vips6 = serviceVips6(vips, networks);
      const droppedVips = Object.entries(current?.vips ?? {}).filter(([netName, ip]) => vips[netName] !== ip);
      ops.push(...(await this.quarantine.releaseOps(droppedVips.map(([network, ip]) => ({ network, ip, owner: `vip:${name}` })))));

      // Ports: explicit ones must be free (or already ours); dynamic ones keep their old number or get a free one.
      const portClaims = new Map(portKvs.map((kv) => [kv.key, kv]));
      const used = { tcp: new Set<number>(), udp: new Set<number>() };
      for (const kv of portKvs) {
        const [protocol, port] = kv.key.slice(keys.PORTS.length).split('/');
        if (protocol === 'tcp' || protocol === 'udp') used[protocol].add(Number(port));
      }
      const requireFree = (protocol: 'tcp' | 'udp', port: number): void => {
        const owner = portClaims.get(keys.portKey(protocol, port))?.value;
        if (owner !== undefined && owner !== name) throw new PortConflictError(port, protocol, owner);
        used[protocol].add(port);
      };
      for (const p of spec.ports) if (p.published) requireFree(p.protocol, p.published);
      if (spec.healthPort !== undefined) requireFree('tcp', spec.healthPort);
      const reusable = (current?.ports ?? []).filter((c) => !spec.ports.some((p) => p.published === c.published && p.protocol === c.protocol));
      const ports: PortRecord[] = spec.ports.map((p) => {
        let published = p.published ?? 0;
        if (published === 0) {
          const i = reusable.findIndex((c) => c.target === p.target && c.protocol === p.protocol && c.mode === p.mode);
          published = i >= 0 ? reusable.splice(i, 1)[0]!.published : choosePort(used[p.protocol], attempt);
          used[p.protocol].add(published);
        }
        // Ports carried over from the stored record keep fields a newer meshnet added.
        return { ...unknownFields(PortRecordSchema, p), published, target: p.target, protocol: p.protocol, mode: p.mode, policy: p.policy };
      });
      let healthPort = spec.healthPort;
      if (healthPort === undefined && ports.some((p) => p.policy === 'local')) healthPort = choosePort(used.tcp, attempt);
      if (!ports.some((p) => p.policy === 'local') && mode === 'update' && spec.healthPort === current?.healthPort) healthPort = undefined;
      const newClaims = portClaimKeys(ports, healthPort);
      const oldClaims = current ? portClaimKeys(current.ports, current.healthPort) : [];
      for (const claim of new Set(newClaims)) {
        if (oldClaims.includes(claim)) continue;
        compare.push(unchanged(claim, portClaims.get(claim)));
        ops.push({ type: 'put', key: claim, value: name });
      }
      for (const claim of new Set(oldClaims)) if (!newClaims.includes(claim)) ops.push({ type: 'delete', key: claim });

      const record: ServiceRecord = {
        ...(current ? unknownFields(ServiceRecordSchema, current) : {}),
        name,
        networks: spec.networks,
        vips,
        ...(vips6 !== undefined ? { vips6 } : {}),
        endpointMode: spec.endpointMode,
        ports,
        replicas: spec.replicas,
        command: spec.command,
        lb: spec.lb,
        ...(spec.env !== undefined ? { env: spec.env } : {}),
        ...(healthPort !== undefined ? { healthPort } : {}),
        ...privilegeFields(spec),
        ...presentPlacement(spec),
        ...rolloutFields(spec),
        ...aliasFields(spec),
        ...lifecycleFields(spec),
      };
      ops.unshift({ type: 'put', key, value: encodeRecord(ServiceRecordSchema, 'service', key, record) });
      return (await this.commit(compare, ops)) ? record : undefined;
    });
  }

  /** Removes a service, releasing its VIPs and ports, then its tasks and their addresses. */
  async removeService(name: string): Promise<void> {
    const key = keys.serviceKey(name);
    await this.retrying(`removeService(${name})`, async () => {
      const read = await this.read(ServiceRecordSchema, 'service', key);
      if (!read) throw new NotFoundError('service', name);
      const service = read.record;
      const compare: Compare[] = [unchanged(key, read.kv)];
      const ops: TxnOp[] = [{ type: 'delete', key }];
      for (const netName of attachedNetworks(service)) {
        const { kv: usersKv, users } = await this.netUsers(netName);
        const rest = users.filter((u) => u !== name);
        const usersKey = keys.netusersKey(netName);
        compare.push(unchanged(usersKey, usersKv));
        ops.push(rest.length > 0 ? { type: 'put', key: usersKey, value: JSON.stringify(rest) } : { type: 'delete', key: usersKey });
      }
      const vips: ReleasedAddress[] = Object.entries(service.vips).map(([network, ip]) => ({ network, ip, owner: `vip:${name}` }));
      ops.push(...(await this.quarantine.releaseOps(vips)));
      for (const claim of new Set(portClaimKeys(service.ports, service.healthPort))) {
        const kv = await this.store.get(claim);
        if (kv?.value === name) ops.push({ type: 'delete', key: claim });
      }
      return (await this.commit(compare, ops)) ? true : undefined;
    });
    // Task claims compare the service record, so none can appear after the commit above: clear what is left.
    for (const task of await this.listTasks({ service: name })) await this.removeTask(name, task.slot);
    await removeServiceHistory(this.store, name);
  }

  /** Refuses a service whose name or alias another service already answers on a shared network. */
  private async checkAliasConflicts(spec: NormalizedServiceSpec, current: ServiceRecord | undefined): Promise<void> {
    // Only a new service, or new networks or aliases, can bring a clash: other updates skip reading every service.
    const aliases = normalizeAliases(spec);
    if (current && JSON.stringify([current.networks, current.aliases]) === JSON.stringify([spec.networks, aliases])) return;
    // Records this meshnet cannot read are left out rather than blocking every create (agents report them).
    const { kvs } = await this.store.range(keys.SERVICES);
    const others = kvs.flatMap((kv) => {
      const entry = decodeSnapshotEntry(kv.key, kv.value);
      return entry && 'record' in entry && entry.kind === 'service' ? [entry.record] : [];
    });
    const clash = aliasConflict({ ...spec, aliases }, others);
    if (clash) throw new InvalidSpecError(clash);
  }

  /** All services. */
  async listServices(): Promise<ServiceRecord[]> {
    return this.list(ServiceRecordSchema, 'service', keys.SERVICES);
  }

  /** One service, or undefined. */
  async getService(name: string): Promise<ServiceRecord | undefined> {
    return (await this.read(ServiceRecordSchema, 'service', keys.serviceKey(name)))?.record;
  }

  // ---- tasks ----

  /**
   * Makes `nodeId` the owner of `service` slot `slot`: returns the existing task when it already runs there,
   * otherwise writes a new task (new id, new addresses on every attached network) replacing the old one,
   * whose addresses go into quarantine (see ClusterOptions.addressQuarantineSeconds).
   */
  async claimTask(serviceName: string, slot: number, nodeId: string): Promise<TaskRecord> {
    const key = keys.taskKey(serviceName, slot);
    return this.retrying(`claimTask(${serviceName}.${slot})`, async (attempt) => {
      const [service, node, existing] = await Promise.all([
        this.read(ServiceRecordSchema, 'service', keys.serviceKey(serviceName)),
        this.read(NodeRecordSchema, 'node', keys.nodeKey(nodeId)),
        this.read(TaskRecordSchema, 'task', key),
      ]);
      if (!service) throw new NotFoundError('service', serviceName);
      const maxSlot = maxSlotOf(service.record, Cluster.EXTERNAL_SLOT_BASE);
      if (!Number.isInteger(slot) || slot < 1 || slot > maxSlot) {
        throw new InvalidSpecError(`slot ${slot} is outside 1..${maxSlot} of service ${serviceName}`);
      }
      if (!node) throw new NotFoundError('node', nodeId, 'register it (with a live lease) before claiming tasks');
      if (existing && existing.record.node === nodeId && existing.record.desiredState === 'running') return existing.record;

      const id = newTaskId();
      const compare: Compare[] = [unchanged(service.kv.key, service.kv), unchanged(node.kv.key, node.kv), unchanged(key, existing?.kv)];
      const ops: TxnOp[] = [];
      const addresses = await this.claimTaskAddresses(service.record, id, attempt, compare, ops);
      if (existing) ops.push(...(await this.releaseTaskAddresses(existing.record)));
      if (existing) await this.recordFinished(existing.record, 'replaced', compare, ops);
      // A start-first successor of the task replaced here goes with it (its node is gone too, or the update moved on).
      await this.dropSuccessor(serviceName, slot, compare, ops);
      return this.commitTask(key, this.newTask(service.record, slot, nodeId, id, addresses), compare, ops);
    });
  }

  /** Writes a task record together with its address claims in one compare-and-swap; undefined when a race was lost. */
  private async commitTask(key: string, record: TaskRecord, compare: Compare[], ops: TxnOp[]): Promise<TaskRecord | undefined> {
    ops.unshift({ type: 'put', key, value: encodeRecord(TaskRecordSchema, 'task', key, record) });
    return (await this.commit(compare, ops)) ? record : undefined;
  }

  /** Picks a free address on each of the service's networks for task `id`, adding the claims to the txn being built. */
  private async claimTaskAddresses(service: ServiceRecord, id: string, attempt: number, compare: Compare[], ops: TxnOp[]): Promise<TaskRecord['addresses']> {
    const addresses: TaskRecord['addresses'] = {};
    const taskNetworks = attachedNetworks(service);
    const [nets, used] = await Promise.all([
      Promise.all(taskNetworks.map((n) => this.getNetwork(n))),
      Promise.all(taskNetworks.map((n) => this.usedIps(n))),
    ]);
    for (const [i, netName] of taskNetworks.entries()) {
      const net = nets[i];
      if (!net) throw new NotFoundError('network', netName);
      const ip = chooseAddress(net.subnet, used[i]!, netName, attempt);
      addresses[netName] = { ip, mac: macFromIpv4(ip), ...taskAddressIpv6(net, ip) };
      compare.push({ key: keys.ipKey(netName, ip), absent: true });
      ops.push({ type: 'put', key: keys.ipKey(netName, ip), value: `task:${id}` });
    }
    return addresses;
  }

  /** Slots of attached (external) tasks start here, far above any replica count. */
  static readonly EXTERNAL_SLOT_BASE = 100_001;

  /**
   * Attaches a namespace made by another runtime to `serviceName`'s networks as an extra task on
   * `nodeId` (`meshnet task attach`): addresses are allocated as for replicas; that node's agent
   * wires the namespace, and the task is balanced and named like the others.
   */
  async attachExternalTask(serviceName: string, nodeId: string, sandbox: string): Promise<TaskRecord> {
    return this.retrying(`attachExternalTask(${serviceName})`, async (attempt) => {
      const service = await this.read(ServiceRecordSchema, 'service', keys.serviceKey(serviceName));
      if (!service) throw new NotFoundError('service', serviceName, 'create it first: meshnet service create');
      const node = await this.read(NodeRecordSchema, 'node', keys.nodeKey(nodeId));
      if (!node) throw new NotFoundError('node', nodeId, 'the node must run an agent (see meshnet node ls)');
      const tasks = await this.listTasks({ service: serviceName });
      if (tasks.some((t) => t.sandbox === sandbox && t.node === nodeId)) throw new InvalidSpecError(`namespace ${sandbox} is already attached to service ${serviceName} on ${nodeId}`);
      let slot = Cluster.EXTERNAL_SLOT_BASE;
      while (tasks.some((t) => t.slot === slot)) slot++;
      const key = keys.taskKey(serviceName, slot);
      const id = newTaskId();
      const compare: Compare[] = [unchanged(service.kv.key, service.kv), unchanged(node.kv.key, node.kv), { key, absent: true }];
      const ops: TxnOp[] = [];
      const addresses = await this.claimTaskAddresses(service.record, id, attempt, compare, ops);
      const record: TaskRecord = {
        id,
        service: serviceName,
        slot,
        node: nodeId,
        addresses,
        sandbox,
        external: true,
        desiredState: 'running',
        state: 'running',
        restarts: 0,
        updatedAt: this.now().toISOString(),
      };
      return this.commitTask(key, record, compare, ops);
    });
  }

  /** Records what the agent observed of its task; TaskReplacedError when the slot now holds another task. */
  async updateTaskState(serviceName: string, slot: number, taskId: string, update: TaskStateUpdate): Promise<TaskRecord> {
    return this.retrying(`updateTaskState(${serviceName}.${slot})`, async () => {
      // The task may be the slot's start-first successor (src/model/successor-task.ts).
      const slotRead = await this.readSlot(serviceName, slot);
      const at = positionOf({ primary: slotRead.primary?.record, successor: slotRead.successor?.record }, taskId);
      const read = at && slotRead[at];
      if (!read) throw new TaskReplacedError(serviceName, slot, taskId);
      const key = read.kv.key;
      // A message describes the state it came with, so a new update without one clears it.
      const { message: _stale, health: oldHealth, ...rest } = read.record;
      const health = update.health === null ? undefined : (update.health ?? oldHealth);
      const record: TaskRecord = {
        ...rest,
        ...(health !== undefined ? { health } : {}),
        ...(update.state !== undefined ? { state: update.state } : {}),
        ...(update.desiredState !== undefined ? { desiredState: update.desiredState } : {}),
        ...(update.restarts !== undefined ? { restarts: update.restarts } : {}),
        ...(update.message !== undefined ? { message: update.message } : {}),
        updatedAt: this.now().toISOString(),
      };
      const compare = [unchanged(key, read.kv)];
      const ops: TxnOp[] = [{ type: 'put', key, value: encodeRecord(TaskRecordSchema, 'task', key, record) }];
      // A restart in place ends a run: keep why, as Docker keeps the failed task a restart replaces.
      if ((update.restarts ?? 0) > read.record.restarts) await this.recordFinished(read.record, 'restarted', compare, ops, update.lastExit ?? restartError(update, read.record.message));
      return (await this.commit(compare, ops)) ? record : undefined;
    });
  }

  /** Deletes a slot's task (only while it is still `taskId`, when given); its addresses go into quarantine. */
  async removeTask(serviceName: string, slot: number, taskId?: string): Promise<boolean> {
    return this.retrying(`removeTask(${serviceName}.${slot})`, async () => {
      // With a start-first successor, removing the old task moves the successor into the slot in the same txn.
      const slotRead = await this.readSlot(serviceName, slot);
      const removal = removalOf({ primary: slotRead.primary?.record, successor: slotRead.successor?.record }, taskId);
      const read = removal && slotRead[removal.remove];
      if (!removal || !read) return false;
      const key = read.kv.key;
      const next = removal.promote ? slotRead.successor : undefined;
      // The successor overwrites the old task before its own key goes: SQLite gives each op its own revision,
      // and no revision may show the slot without its running task.
      const ops: TxnOp[] = next
        ? [{ type: 'put', key, value: encodeRecord(TaskRecordSchema, 'task', key, promoted(next.record)) }, { type: 'delete', key: next.kv.key }]
        : [{ type: 'delete', key }];
      ops.push(...(await this.releaseTaskAddresses(read.record)));
      const compare = [unchanged(key, read.kv), ...(next ? [unchanged(next.kv.key, next.kv)] : [])];
      await this.recordFinished(read.record, 'removed', compare, ops);
      return (await this.commit(compare, ops)) ? true : undefined;
    });
  }

  /**
   * Start-first rolling update: claims on `nodeId` a successor for slot `slot`, whose outdated task `replaces`
   * keeps running until the successor is ready (src/model/successor-task.ts). Returns the slot's successor when
   * it already has one; TaskReplacedError when `replaces` no longer holds the slot.
   */
  async claimSuccessorTask(serviceName: string, slot: number, nodeId: string, replaces: string): Promise<TaskRecord> {
    const key = keys.taskSuccessorKey(serviceName, slot);
    return this.retrying(`claimSuccessorTask(${serviceName}.${slot})`, async (attempt) => {
      const [service, node, held] = await Promise.all([
        this.read(ServiceRecordSchema, 'service', keys.serviceKey(serviceName)),
        this.read(NodeRecordSchema, 'node', keys.nodeKey(nodeId)),
        this.readSlot(serviceName, slot),
      ]);
      if (!service) throw new NotFoundError('service', serviceName);
      if (!node) throw new NotFoundError('node', nodeId, 'register it (with a live lease) before claiming tasks');
      if (held.successor) return held.successor.record;
      if (!held.primary || held.primary.record.id !== replaces) throw new TaskReplacedError(serviceName, slot, replaces);
      const id = newTaskId();
      const compare: Compare[] = [unchanged(service.kv.key, service.kv), unchanged(node.kv.key, node.kv), unchanged(held.primary.kv.key, held.primary.kv), { key, absent: true }];
      const ops: TxnOp[] = [];
      const addresses = await this.claimTaskAddresses(service.record, id, attempt, compare, ops);
      return this.commitTask(key, { ...this.newTask(service.record, slot, nodeId, id, addresses), replaces }, compare, ops);
    });
  }

  /** A task record for `slot` on `nodeId` at the service's current version, not started yet. */
  private newTask(service: ServiceRecord, slot: number, nodeId: string, id: string, addresses: TaskRecord['addresses']): TaskRecord {
    return {
      id,
      service: service.name,
      slot,
      node: nodeId,
      addresses,
      sandbox: join(this.sandboxDir, `t-${id.slice(0, 12)}`),
      desiredState: 'running',
      state: 'new',
      restarts: 0,
      updatedAt: this.now().toISOString(),
      ...(service.version ? { specVersion: service.version } : {}),
    };
  }

  /** Both records of a slot: its task and its start-first successor (each absent when not stored). */
  private async readSlot(serviceName: string, slot: number) {
    const [primary, successor] = await Promise.all([
      this.read(TaskRecordSchema, 'task', keys.taskKey(serviceName, slot)),
      this.read(TaskRecordSchema, 'task', keys.taskSuccessorKey(serviceName, slot)),
    ]);
    return { primary, successor };
  }

  /** Adds to the txn being built the removal of slot `slot`'s successor, when it has one. */
  private async dropSuccessor(serviceName: string, slot: number, compare: Compare[], ops: TxnOp[]): Promise<void> {
    const key = keys.taskSuccessorKey(serviceName, slot);
    const read = await this.read(TaskRecordSchema, 'task', key);
    compare.push(unchanged(key, read?.kv));
    if (!read) return;
    ops.push({ type: 'delete', key }, ...(await this.releaseTaskAddresses(read.record)));
    await this.recordFinished(read.record, 'replaced', compare, ops);
  }

  /** Adds to the txn being built the entry that keeps `task`'s end in its slot's history (`service ps`). */
  private async recordFinished(task: TaskRecord, how: FinishKind, compare: Compare[], ops: TxnOp[], error?: string): Promise<void> {
    const history = await historyAppendTxn(this.store, task, how, this.now(), error);
    compare.push(...history.compare);
    ops.push(...history.ops);
  }

  /** Tasks, optionally of one service and/or one node, ordered by service then slot. */
  async listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    const prefix = filter.service !== undefined ? keys.serviceTasksPrefix(filter.service) : keys.TASKS;
    const tasks = await this.list(TaskRecordSchema, 'task', prefix);
    return tasks.filter((t) => filter.node === undefined || t.node === filter.node).sort(byServiceThenSlot);
  }

  // ---- whole-state views ----

  /** Everything at one revision; invalid records are reported in `invalid` instead of failing the read. */
  async snapshot(): Promise<ClusterSnapshot> {
    const { kvs, revision } = await this.store.range(keys.ROOT);
    const snap: ClusterSnapshot = { revision, nodes: [], nodeInfo: [], networks: [], services: [], tasks: [], invalid: [] };
    for (const kv of kvs) {
      const entry = decodeSnapshotEntry(kv.key, kv.value);
      if (entry === undefined) continue;
      if ('invalid' in entry) snap.invalid.push(entry.invalid);
      else if (entry.kind === 'node') snap.nodes.push(entry.record);
      else if (entry.kind === 'node-info') snap.nodeInfo.push(entry.record);
      else if (entry.kind === 'network') snap.networks.push(entry.record);
      else if (entry.kind === 'service') snap.services.push(entry.record);
      else snap.tasks.push(entry.record);
    }
    snap.tasks.sort(byServiceThenSlot);
    return snap;
  }

  /** A service and its tasks, tolerating records that fail validation (listed in `invalid`); undefined when nothing is stored. */
  async inspectService(name: string): Promise<ServiceView | undefined> {
    const [serviceKv, { kvs: taskKvs }] = await Promise.all([this.store.get(keys.serviceKey(name)), this.store.range(keys.serviceTasksPrefix(name))]);
    if (serviceKv === undefined && taskKvs.length === 0) return undefined;
    const view: ServiceView = { service: undefined, tasks: [], invalid: [] };
    for (const kv of serviceKv ? [serviceKv, ...taskKvs] : taskKvs) {
      const entry = decodeSnapshotEntry(kv.key, kv.value);
      if (entry === undefined) continue;
      if ('invalid' in entry) view.invalid.push(entry.invalid);
      else if (entry.kind === 'service') view.service = entry.record;
      else if (entry.kind === 'task') view.tasks.push(entry.record);
    }
    view.tasks.sort(byServiceThenSlot);
    return view;
  }

  /** Calls `onChange` for every change under /meshnet/ (from `options.fromRevision`, default: from now). */
  async watch(onChange: (event: WatchEvent) => void, options: WatchOptions = {}): Promise<WatchHandle> {
    return this.store.watch(keys.ROOT, options, onChange);
  }
}

/** A service's --user, --cap-add and --cap-drop, carried from spec to record and through updates. */
function privilegeFields(s: Pick<ServiceRecord, 'user' | 'capAdd' | 'capDrop'>): Pick<ServiceRecord, 'user' | 'capAdd' | 'capDrop'> {
  return {
    ...(s.user !== undefined ? { user: s.user } : {}),
    ...(s.capAdd !== undefined ? { capAdd: s.capAdd } : {}),
    ...(s.capDrop !== undefined ? { capDrop: s.capDrop } : {}),
  };
}
