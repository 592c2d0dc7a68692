import { join } from 'node:path';
import { runSpecOf, type RunSpec } from '../model/rolling-update.js';
import { lifecycleFields } from '../model/service-health.js';
import { createHash } from 'node:crypto';
import type { ClusterSnapshot } from '../model/cluster.js';
import { attachedNetworks } from '../model/cluster.js';
import type { NetworkRecord, NodeRecord, ServiceRecord, TaskRecord } from '../model/records.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import type { OverlayInput, LocalEndpoint, RemoteEndpoint } from '../overlay/overlay-spec.js';
import { intToIpv4, ipv4ToInt, macForIpv4, parseCidr } from '../sandbox/addresses.js';
import type { IngressEndpoint } from './ingress-endpoint.js';
import type { NameView } from '../dns/name-view.js';
import { nameViews, NameViewMemo, taskName } from './name-view-plan.js';
import type { MeshInput } from '../mesh/mesh-input.js';
import { computeMeshPlan } from '../mesh/published-ports.js';
import type { HealthPortPlan, HostPlan, MeshPlan, ReturnRoute, TaskRedirect } from '../mesh/mesh-plan.js';
import type { MeshConflictError } from '../mesh/errors.js';
import type { LbTable } from '../vip/lb-table.js';
import { hostFirewallRuleSets, hostFirewallSysctls } from '../mesh/host-firewall.js';
import type { IptablesRuleSet } from '../mesh/iptables-ruleset.js';
import type { GwLeg } from './gwbridge.js';
import { EastWestPlanner } from './lb-plan.js';
import { nodeEncryption } from '../overlay/encryption-target.js';
import { overlayUnderlayMtu } from '../overlay/encryption-mtu.js';
import { isEncrypted, type EncryptionPlan } from '../overlay/encryption-plan.js';
import type { Keyring } from '../overlay/keyring.js';
import { addressIpv6, v6Field } from '../model/dual-stack.js';
import { ingressLeg6, ingressV6 } from './ingress-v6.js';
import { reachableView } from './vtep-exclusion.js';
import { VTEP_PROBE_SYSCTL } from '../overlay/vtep-socket.js';
import { hostPortLeg6, hostPortsV6 } from './host-ports-v6.js';
import { ipvsSysctlTargets } from '../vip/ipvs/ipvs-tuning.js';

/** This node's fixed settings, from the agent's configuration. */
export interface NodeSettings {
  nodeId: string;
  /** Where this node keeps its namespaces (tasks, overlays, ingress_sbox). */
  netnsDir: string;
  underlayIp: string;
  underlayMtu: number;
  gwbridge: { name: string; subnet: string; gateway: string; sboxAddress: string };
  /** Seconds a draining task keeps weight 0 before it leaves the tables. */
  drainSeconds: number;
  /** The agent probes peers' VTEPs from the ingress sandbox (agent --vtep-probe-interval-ms > 0). */
  vtepProbe?: boolean;
  /** The kernel balancer the agent chose (--lb-backend); IPVS namespaces get the IPVS sysctls. Absent: nftables. */
  lbBackend?: 'nftables' | 'ipvs';
}

/** One network interface of a local task. */
export interface TaskInterface {
  network: string;
  ifname: string;
  ip: string;
  mac: string;
  /** Its v6 address on a dual-stack network. */
  ip6?: string;
}

/** A task this node must run, with everything needed to wire and start it. */
export interface LocalTask {
  record: TaskRecord;
  service: ServiceRecord;
  /** e.g. web.2 */
  name: string;
  /** The task's namespace file: computed on this node from the task id, never taken from a record (except attached ones). */
  sandbox: string;
  interfaces: TaskInterface[];
  /** The task's leg on the node's gwbridge: default route and host-mode ports. */
  gw: { ifname: string; hostIf: string; ip: string; mac: string };
  /** The process should run (false while draining: kept alive, given no new connections). */
  draining: boolean;
  /** Run by another runtime: wired here, never started, stopped or pruned by meshnet. */
  external: boolean;
}

/** What the node knows that the store does not; read by its owners, never by the planner. */
export interface NodeFacts {
  /** task id -> the gwbridge address its namespace holds (adopted from the kernel at start, then as applied). */
  gwAddresses: Readonly<Record<string, string>>;
  /** Attached (external) tasks whose namespace is missing or is not a usable network namespace. */
  unusableExternal: ReadonlySet<string>;
  /** Every node's ingress sandbox endpoint. */
  ingressEndpoints: readonly IngressEndpoint[];
  /** Milliseconds since the epoch: drain deadlines. */
  now: number;
  /**
   * Nodes whose record vanished less than a lease TTL ago. Their backends leave every table at once,
   * but their overlay entries stay for the grace: a node whose lease merely lapsed still carries
   * connections (replies to its ingress sandbox cross the overlay), and quarantine keeps its
   * addresses from being reused meanwhile.
   */
  graceNodes?: readonly NodeRecord[];
  /** The cluster's keyring for encrypted overlays, when one is stored. */
  keyring?: Keyring;
  /** Nodes whose VTEP stopped answering over the overlay: their backends leave the tables (vtep-exclusion.ts). */
  unreachableNodes?: ReadonlySet<string>;
}

/** A sysctl the node needs; `netns` null is the host. */
export interface SysctlTarget {
  netns: string | null;
  key: string;
  value: string;
}

/** A local task's mesh rules: REDIRECT published -> target, and the policy=local return route. */
export interface TaskRules {
  taskId: string;
  netns: string;
  redirects: TaskRedirect[];
  returnRoute: ReturnRoute | null;
  /** Its v6 twin once the ingress network is dual stack (null: none); absent: v4 only, no v6 rule or route is read. */
  returnRoute6?: ReturnRoute | null;
}

/** A process the node runs (the agent adds the resolv.conf it serves). */
export interface ProcessPlan {
  taskId: string;
  netnsPath: string;
  command: string[];
  env: Record<string, string>;
  hostname: string;
  /** Who the process runs as, and its capabilities (Docker's --user, --cap-add, --cap-drop); no_new_privs always. */
  user?: string;
  capAdd?: string[];
  capDrop?: string[];
  /** The service's health check and restart policy, applied by the supervisor to the running process. */
  healthcheck?: ServiceRecord['healthcheck'];
  restartPolicy?: ServiceRecord['restartPolicy'];
}

/** Everything this node's kernel and processes should hold, as plain comparable data. */
export interface NodePlan {
  tasks: LocalTask[];
  /** Names (under the node's netns dir) of the namespaces meshnet makes: tasks and ingress_sbox. */
  namespaces: string[];
  /** Veth legs on the host bridge: the ingress sandbox's and every task's. */
  gwLegs: GwLeg[];
  overlays: OverlayInput[];
  /** Load-balancing table per namespace: each task's east-west VIPs, and the ingress sandbox's published ports. */
  lbTables: { netns: string; table: LbTable }[];
  /** The host firewall meshnet owns: the localnet guard, gwbridge isolation and anti-spoofing, VXLAN from peers only. */
  hostFirewall: IptablesRuleSet[];
  /** ESP states and policies of the encrypted overlays (null: none, and no XFRM object of meshnet's). */
  encryption: EncryptionPlan | null;
  /** The host's DOCKER-INGRESS rules; null when the cluster has no ingress network yet. */
  hostRules: HostPlan | null;
  /** The host's v6 DOCKER-INGRESS (ip6tables), only once the ingress network is dual stack; absent otherwise. */
  hostRules6?: IptablesRuleSet;
  taskRules: TaskRules[];
  health: HealthPortPlan[];
  sysctls: SysctlTarget[];
  nameViews: { sandbox: string; view: NameView }[];
  processes: ProcessPlan[];
  /** Published-port claims the mesh left out, for the log and `service inspect`. */
  conflicts: MeshConflictError[];
  /** The ingress network and this node's endpoint on it, when the node has one. */
  ingress: { network: NetworkRecord; endpoint: IngressEndpoint } | null;
}

/** Name of the ingress sandbox namespace (Docker's ingress_sbox). */
export const INGRESS_SBOX = 'ingress_sbox';
/** Host-side name of the ingress sandbox's gwbridge veth. */
export const SBOX_HOST_IF = 'mn-sbox';

/** Host-side name of a task's gwbridge veth: stable, within 15 characters. */
export function gwHostIfName(taskId: string): string {
  return `mg${createHash('sha256').update(taskId).digest('hex').slice(0, 11)}`;
}

/** Name of a task's namespace under the node's netns dir, derived from its id alone. */
export function taskNetnsName(taskId: string): string {
  return `t-${taskId.slice(0, 12)}`;
}

/** A task's networks in interface order: ingress first (as Docker's eth0 for published services), then its own. */
export function taskNetworks(service: ServiceRecord): string[] {
  const nets = attachedNetworks(service);
  return [...nets.filter((n) => n === INGRESS_NETWORK), ...nets.filter((n) => n !== INGRESS_NETWORK)];
}

/**
 * Keeps existing gwbridge addresses and gives new tasks the lowest free one, so an address
 * never changes under a running task. Pure: `current` is what the kernel holds.
 */
export function assignGwAddresses(taskIds: readonly string[], current: Readonly<Record<string, string>>, gw: NodeSettings['gwbridge']): Record<string, string> {
  const { ip: base, prefix } = parseCidr(gw.subnet);
  const first = ipv4ToInt(base) + 1;
  const last = ipv4ToInt(base) + 2 ** (32 - prefix) - 2;
  const used = new Set([gw.gateway, gw.sboxAddress]);
  const out: Record<string, string> = {};
  // The subnet parsed once, not once per task on every pass (cidrContains parses both sides each call).
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ipv4ToInt(base) & mask) >>> 0;
  for (const id of taskIds) {
    const ip = current[id];
    if (ip && ((ipv4ToInt(ip) & mask) >>> 0) === network && !used.has(ip)) {
      out[id] = ip;
      used.add(ip);
    }
  }
  let next = first;
  for (const id of [...taskIds].sort()) {
    if (out[id]) continue;
    while (next <= last && used.has(intToIpv4(next))) next++;
    if (next > last) throw new Error(`gwbridge subnet ${gw.subnet} is full: use a larger --gwbridge-subnet`);
    out[id] = intToIpv4(next);
    used.add(out[id]);
  }
  return out;
}


/** State carried between passes only to make planning cheap; it never changes a result. */
export class PlanMemo {
  readonly eastWest = new EastWestPlanner();
  /** A local task's wiring, kept while its record, service, networks and gwbridge address are the same objects and value. */
  readonly localTasks = new WeakMap<TaskRecord, { service: ServiceRecord; gwIp: string; nets: (NetworkRecord | undefined)[]; task: LocalTask }>();
  /**
   * The last mesh plan and the JSON of its input: a pass woken by a write that touches no published
   * service gets the same plan object (so its tables compare by identity) without re-validating and
   * re-planning every published port. The JSON is a fraction of the planning's cost.
   */
  mesh: { key: string; plan: MeshPlan; input: MeshInput; from: MeshSources; sboxTable?: LbTable } | null = null;
  /** The name views' inputs and views, so a pass that changes no name hands out the same view objects. */
  readonly names = new NameViewMemo();
  /**
   * The host firewall's rule sets and the JSON of their input: validating and rendering them (an
   * anti-spoofing rule per leg) on every pass, and comparing the new objects by content, was a fifth of
   * a pass woken by a node record's change. The same sets compare by identity.
   */
  hostFirewall: { key: string; sets: IptablesRuleSet[] } | null = null;
  /**
   * Each local task's gwbridge leg, kept with its wiring (and the node's gwbridge settings): a new leg
   * object per task per pass was compared with the applied one by its JSON, a hundred stringifications
   * in a pass that changed nothing.
   */
  readonly gwLegs = new WeakMap<LocalTask, { gw: NodeSettings['gwbridge']; leg: GwLeg }>();
  /** The overlays and what they were planned from (memoOverlayInputs). */
  overlays: { node: string; networks: NetworkRecord[]; tasks: LocalTask[]; alive: TaskRecord[]; peers: string; endpoints: string; result: OverlayInput[] } | null = null;
  /** Each local task's process, kept with its wiring: everything in it comes from the task, its service and the node. */
  readonly processes = new WeakMap<LocalTask, ProcessPlan>();
  /** Each local task's mesh rules, kept while its wiring and its part of the mesh plan are the same objects. */
  readonly taskRules = new WeakMap<LocalTask, { tp: MeshPlan['tasks'][number] | undefined; v6: unknown; rules: TaskRules }>();
}

/** Stores `value` for `key` and returns it. */
function memoize<K extends object, V>(map: WeakMap<K, V>, key: K, value: V): V {
  map.set(key, value);
  return value;
}

/**
 * Pure: the whole desired state of this node, from the cluster's intent and the node's facts.
 * The node itself always counts as live here: a lapse of its own lease (a store hiccup) must not
 * make its tasks look foreign and stop them; they move only when the cluster places them elsewhere.
 */
export function desiredNode(snapshot: ClusterSnapshot, settings: NodeSettings, facts: NodeFacts, memo: PlanMemo = new PlanMemo()): NodePlan {
  const me = settings.nodeId;
  const liveNodes = new Map(snapshot.nodes.map((n) => [n.id, n]));
  const live = (node: string) => node === me || liveNodes.has(node);
  const networks = new Map(snapshot.networks.map((n) => [n.name, n]));
  const services = new Map(snapshot.services.map((s) => [s.name, s]));
  const ingressNet = snapshot.networks.find((n) => n.ingress) ?? null;
  const myIngress = facts.ingressEndpoints.find((e) => e.node === me);
  const sboxPath = join(settings.netnsDir, INGRESS_SBOX);

  // Tasks that exist on live nodes and whose service exists; ours are wired even before they run.
  const alive = snapshot.tasks.filter((t) => live(t.node) && services.has(t.service));
  // Tables and names leave out unreachable VTEPs' tasks; overlays keep them, so probes can see them come back.
  const reachable = reachableView(snapshot, alive, facts.unreachableNodes, live);
  const mine = alive.filter((t) => t.node === me && !(t.external && facts.unusableExternal.has(t.id)));
  const gwIps = assignGwAddresses(mine.map((t) => t.id).sort(), facts.gwAddresses, settings.gwbridge);

  const tasks: LocalTask[] = mine.map((record) => {
    const service = services.get(record.service)!;
    const gwIp = gwIps[record.id]!;
    const nets = taskNetworks(service).map((n) => networks.get(n));
    const memoTask = memo.localTasks.get(record);
    if (memoTask && memoTask.service === service && memoTask.gwIp === gwIp && memoTask.nets.length === nets.length && memoTask.nets.every((n, i) => n === nets[i])) return memoTask.task;
    const task = localTask(record, service, gwIp);
    memo.localTasks.set(record, { service, gwIp, nets, task });
    return task;
  });
  function localTask(record: TaskRecord, service: ServiceRecord, gwIp: string): LocalTask {
    const interfaces: TaskInterface[] = taskNetworks(service)
      .filter((n) => record.addresses[n] && networks.has(n))
      .map((network, i) => ({ network, ifname: `eth${i}`, ip: record.addresses[network]!.ip, mac: record.addresses[network]!.mac, ...v6Field(addressIpv6(networks.get(network), record.addresses[network]!)) }));
    return {
      record,
      service,
      name: taskName(record),
      sandbox: record.external ? record.sandbox : join(settings.netnsDir, taskNetnsName(record.id)),
      interfaces,
      gw: { ifname: `eth${interfaces.length}`, hostIf: gwHostIfName(record.id), ip: gwIp, mac: macForIpv4(gwIp) },
      draining: record.desiredState === 'shutdown',
      external: record.external === true,
    };
  }
  const localById = new Map(tasks.map((t) => [t.record.id, t]));
  const ingress = ingressNet && myIngress ? { network: ingressNet, endpoint: myIngress } : null;

  const namespaces = tasks.filter((t) => !t.external).map((t) => taskNetnsName(t.record.id));
  const gwLegs: GwLeg[] = [];
  if (ingress) {
    namespaces.push(INGRESS_SBOX);
    const g = settings.gwbridge;
    gwLegs.push({ sandbox: sboxPath, ifname: 'eth1', hostIf: SBOX_HOST_IF, ip: g.sboxAddress, mac: macForIpv4(g.sboxAddress), defaultRoute: true, isolated: false, ...ingressLeg6(ingress, g) });
  }
  for (const t of tasks) {
    const kept = memo.gwLegs.get(t);
    if (kept && kept.gw === settings.gwbridge) gwLegs.push(kept.leg);
    else gwLegs.push(memoize(memo.gwLegs, t, { gw: settings.gwbridge, leg: { sandbox: t.sandbox, ifname: t.gw.ifname, hostIf: t.gw.hostIf, ip: t.gw.ip, mac: t.gw.mac, defaultRoute: true, isolated: true, ...hostPortLeg6(t, settings.gwbridge) } }).leg);
  }

  const peerNodes = new Map<string, { underlayIp: string }>(liveNodes);
  for (const n of facts.graceNodes ?? []) if (!peerNodes.has(n.id) && n.id !== me) peerNodes.set(n.id, n);
  const peerTasks = peerNodes.size === liveNodes.size ? alive : snapshot.tasks.filter((t) => (t.node === me || peerNodes.has(t.node)) && services.has(t.service));
  const overlays = memoOverlayInputs(memo, settings, facts, { tasks, alive: peerTasks, networks, liveNodes: peerNodes, ingress, sboxPath });

  // Load balancing: each task's VIPs; the ingress sandbox's published ports come with the mesh plan below.
  const networkSets = tasks.map((t) => t.interfaces.map((i) => i.network));
  memo.eastWest.plan(reachable.snapshot, live, settings.drainSeconds, facts.now, networkSets);
  const lbTables = tasks.map((t) => ({ netns: t.sandbox, table: memo.eastWest.tableFor(t.interfaces.map((i) => i.network)) }));

  const sysctls: SysctlTarget[] = [{ netns: null, key: 'net.ipv4.ip_forward', value: '1' }];
  // Bridged leg-to-leg frames reach the isolation rules only through br_netfilter.
  for (const s of hostFirewallSysctls()) sysctls.push({ netns: null, key: s.key, value: s.value });
  const firewallInput = {
    gwbridge: { name: settings.gwbridge.name, subnet: settings.gwbridge.subnet },
    legs: gwLegs.map((l) => ({ hostIf: l.hostIf, address: l.ip })),
    // Every peer that may carry an overlay (those in their grace too): a list that changes only when nodes do.
    vxlanPeers: overlays.length ? [...peerNodes].filter(([id]) => id !== me).map(([, n]) => n.underlayIp).sort() : null,
    localVtep: settings.underlayIp,
  };
  const firewallKey = JSON.stringify(firewallInput);
  if (memo.hostFirewall?.key !== firewallKey) memo.hostFirewall = { key: firewallKey, sets: hostFirewallRuleSets(firewallInput) };
  // A copy of the list (the encryption's set may join it), holding the kept sets themselves.
  const hostFirewall = [...memo.hostFirewall.sets];
  const encryption = nodeEncryption({
    local: settings.underlayIp,
    overlays: overlays.map((o) => ({ vni: o.network.vni, options: networks.get(o.network.name)?.options ?? {} })),
    peers: [...peerNodes].filter(([id]) => id !== me).map(([, n]) => n.underlayIp),
    ring: facts.keyring,
    now: facts.now,
  });
  if (encryption.firewall) hostFirewall.push(encryption.firewall);
  let hostRules: HostPlan | null = null;
  let hostRules6: IptablesRuleSet | undefined;
  const taskRules: TaskRules[] = [];
  let health: HealthPortPlan[] = [];
  let conflicts: MeshConflictError[] = [];
  if (ingress) {
    // The input is built and serialised only when what it is made of changed (its objects, by identity).
    const from: MeshSources = { services: snapshot.services, alive: reachable.alive, tasks, network: ingress.network, node: `${settings.nodeId} ${settings.gwbridge.name} ${settings.gwbridge.subnet} ${settings.gwbridge.sboxAddress} ${ingress.endpoint.ip}` };
    if (!memo.mesh || !sameMeshSources(memo.mesh.from, from)) {
      const input = meshInput(snapshot, settings, ingress, reachable.alive, localById, services);
      const meshKey = JSON.stringify(input);
      if (memo.mesh?.key !== meshKey) memo.mesh = { key: meshKey, plan: computeMeshPlan(input), input, from };
      else memo.mesh = { ...memo.mesh, input, from };
    }
    const input = memo.mesh.input;
    const plan = memo.mesh.plan;
    const v6 = ingressV6(ingress, settings.gwbridge, plan, input);
    hostRules = plan.host;
    for (const s of plan.host.sysctls) sysctls.push({ netns: null, key: s.key, value: s.value });
    for (const s of plan.sbox.sysctls) sysctls.push({ netns: sboxPath, key: s.key, value: s.value });
    if (settings.vtepProbe) sysctls.push({ netns: sboxPath, ...VTEP_PROBE_SYSCTL });
    // v4 only, the sandbox's table is the memoised plan's own: the same object while the plan is.
    lbTables.push({ netns: sboxPath, table: v6 ? { services: [...plan.sbox.virtualServices, ...v6.sboxServices] } : (memo.mesh.sboxTable ??= { services: plan.sbox.virtualServices }) });
    if (v6) {
      hostRules6 = v6.hostRules;
      for (const s of v6.hostSysctls) sysctls.push({ netns: null, key: s.key, value: s.value });
      for (const s of v6.sboxSysctls) sysctls.push({ netns: sboxPath, key: s.key, value: s.value });
    }
    const ports6 = hostPortsV6(plan, v6 !== null, tasks, settings.gwbridge);
    if (ports6) {
      hostRules6 = ports6.rules;
      sysctls.push(...ports6.sysctls);
    }
    const rulesByTask = new Map(plan.tasks.map((tp) => [tp.taskId, tp]));
    // Every local task gets an entry, so one that stops publishing has its rules removed.
    for (const t of tasks) {
      const tp = rulesByTask.get(t.record.id);
      const kept = memo.taskRules.get(t);
      if (kept && kept.tp === tp && kept.v6 === v6) {
        taskRules.push(kept.rules);
        continue;
      }
      const rules: TaskRules = { taskId: t.record.id, netns: t.sandbox, redirects: tp?.redirects ?? [], returnRoute: tp?.returnRoute ?? null, ...(v6 ? { returnRoute6: v6.returnRoute6(tp?.returnRoute ?? null) } : {}) };
      memo.taskRules.set(t, { tp, v6, rules });
      taskRules.push(rules);
    }
    health = v6 ? plan.health.map((h) => ({ ...h, v6: true })) : plan.health;
    conflicts = plan.conflicts;
  }

  const processes: ProcessPlan[] = tasks
    .filter((t) => !t.draining && !t.external)
    .map((t) => memo.processes.get(t) ?? memoize(memo.processes, t, {
      taskId: t.record.id,
      netnsPath: t.sandbox,
      // An outdated task keeps its version's spec until the rolling update replaces it (src/model/rolling-update.ts).
      command: runSpecOf(t.service, t.record).command,
      env: { ...(runSpecOf(t.service, t.record).env ?? {}), MESHNET_TASK_ID: t.record.id, MESHNET_TASK_NAME: t.name, MESHNET_SERVICE: t.service.name, MESHNET_NODE: me },
      hostname: `${t.service.name}-${t.record.slot}`.slice(0, 63),
      ...privilegesOf(runSpecOf(t.service, t.record)),
      ...lifecycleFields(t.service),
    }));
  if (settings.lbBackend === 'ipvs') sysctls.push(...ipvsSysctlTargets(lbTables.map((l) => l.netns)));

  return {
    tasks,
    namespaces,
    gwLegs,
    overlays,
    lbTables,
    hostFirewall,
    encryption: encryption.plan,
    hostRules,
    ...(hostRules6 ? { hostRules6 } : {}),
    taskRules,
    health,
    sysctls,
    nameViews: nameViews(snapshot, tasks, reachable.alive, memo.names),
    processes,
    conflicts,
    ingress,
  };
}

interface OverlayContext {
  tasks: LocalTask[];
  alive: TaskRecord[];
  networks: Map<string, NetworkRecord>;
  liveNodes: Map<string, { underlayIp: string }>;
  ingress: NodePlan['ingress'];
  sboxPath: string;
}

/** What the mesh input is made of: snapshot objects by identity, the node's own addresses by value. */
interface MeshSources {
  services: readonly ServiceRecord[];
  alive: readonly TaskRecord[];
  tasks: readonly LocalTask[];
  network: NetworkRecord;
  node: string;
}

function sameMeshSources(a: MeshSources, b: MeshSources): boolean {
  return a.node === b.node && a.network === b.network && sameItems(a.services, b.services) && sameItems(a.alive, b.alive) && sameItems(a.tasks, b.tasks);
}

/** The same elements in the same order. */
function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * overlayInputs, handing back the last pass's objects while its inputs are the same objects (and the
 * same peer VTEPs and ingress endpoints): an overlay lists every endpoint of its network, and new
 * objects each pass were compared with the applied ones by their JSON, twice a pass at 300 endpoints.
 */
function memoOverlayInputs(memo: PlanMemo, settings: NodeSettings, facts: NodeFacts, ctx: OverlayContext): OverlayInput[] {
  const networks = [...ctx.networks.values()];
  // What overlayInputs reads of the settings, by value: the agent fills its settings object in at start.
  const node = `${settings.nodeId} ${settings.underlayIp} ${settings.underlayMtu}`;
  const peers = JSON.stringify([...ctx.liveNodes].map(([id, n]) => [id, n.underlayIp]));
  const endpoints = JSON.stringify([facts.ingressEndpoints, ctx.ingress?.endpoint ?? null, ctx.sboxPath]);
  const m = memo.overlays;
  if (m && m.node === node && m.peers === peers && m.endpoints === endpoints && sameItems(m.networks, networks) && sameItems(m.tasks, ctx.tasks) && sameItems(m.alive, ctx.alive)) return m.result;
  const result = overlayInputs(settings, facts, ctx);
  memo.overlays = { node, networks, tasks: ctx.tasks, alive: ctx.alive, peers, endpoints, result };
  return result;
}

/** One overlay per network that has a local endpoint (ingress: the sandbox's, whenever the node has one). */
function overlayInputs(settings: NodeSettings, facts: NodeFacts, ctx: OverlayContext): OverlayInput[] {
  const me = settings.nodeId;
  const overlays: OverlayInput[] = [];
  for (const net of ctx.networks.values()) {
    const local: LocalEndpoint[] = [];
    for (const t of ctx.tasks) {
      const itf = t.interfaces.find((i) => i.network === net.name);
      if (itf) local.push({ id: t.record.id, sandbox: t.sandbox, ifname: itf.ifname, ip: itf.ip, mac: itf.mac, ...v6Field(itf.ip6) });
    }
    if (net.ingress && ctx.ingress) {
      const e = ctx.ingress.endpoint;
      local.push({ id: `sbox-${me}`, sandbox: ctx.sboxPath, ifname: 'eth0', ip: e.ip, mac: e.mac, ...v6Field(addressIpv6(net, e)) });
    }
    if (local.length === 0) continue;
    const remote: RemoteEndpoint[] = [];
    for (const t of ctx.alive) {
      const addr = t.addresses[net.name];
      const node = ctx.liveNodes.get(t.node);
      if (t.node === me || !addr || !node) continue;
      remote.push({ ip: addr.ip, mac: addr.mac, vtep: node.underlayIp, ...v6Field(addressIpv6(net, addr)) });
    }
    if (net.ingress) {
      for (const e of facts.ingressEndpoints) {
        const node = ctx.liveNodes.get(e.node);
        if (e.node !== me && node) remote.push({ ip: e.ip, mac: e.mac, vtep: node.underlayIp, ...v6Field(addressIpv6(net, e)) });
      }
    }
    overlays.push({
      network: { name: net.name, vni: net.vni, subnet: net.subnet, gateway: net.gateway, ...(net.subnet6 && net.gateway6 ? { subnet6: net.subnet6, gateway6: net.gateway6 } : {}) },
      underlayMtu: overlayUnderlayMtu(settings.underlayMtu, net.options),
      localVtep: settings.underlayIp,
      ...(isEncrypted(net.options) ? { encrypted: true } : {}),
      local,
      remote,
    });
  }
  return overlays.sort((a, b) => a.network.name.localeCompare(b.network.name));
}

/** The mesh's view of the cluster: published services and every live task of them. */
function meshInput(
  snapshot: ClusterSnapshot,
  settings: NodeSettings,
  ingress: NonNullable<NodePlan['ingress']>,
  alive: TaskRecord[],
  localById: Map<string, LocalTask>,
  services: Map<string, ServiceRecord>,
): MeshInput {
  return {
    node: {
      nodeId: settings.nodeId,
      gwbridge: { name: settings.gwbridge.name, subnet: settings.gwbridge.subnet },
      sbox: { gwbridgeAddress: settings.gwbridge.sboxAddress, ingressAddress: ingress.endpoint.ip },
      ingressSubnet: ingress.network.subnet,
    },
    services: snapshot.services
      .filter((s) => s.ports.length > 0)
      .map((s) => {
        const svc: MeshInput['services'][number] = {
          id: s.name,
          name: s.name,
          ports: s.ports.map((p) => ({ published: p.published, target: p.target, protocol: p.protocol, mode: p.mode, policy: p.policy })),
        };
        if (s.healthPort) svc.healthPort = s.healthPort;
        // Published ports balance as the service's VIPs do (--lb-scheduler, --lb-affinity).
        svc.scheduler = s.lb.scheduler;
        if (s.lb.affinity) svc.affinityTimeoutSeconds = s.lb.affinity.timeoutSeconds;
        return svc;
      }),
    tasks: alive
      .filter((t) => services.get(t.service)!.ports.length > 0)
      .map((t) => {
        const local = localById.get(t.id);
        const ingressItf = local?.interfaces.find((i) => i.network === INGRESS_NETWORK);
        const m: MeshInput['tasks'][number] = {
          id: t.id,
          serviceId: t.service,
          nodeId: t.node,
          state: t.desiredState === 'shutdown' ? 'draining' : t.state === 'running' ? 'running' : t.state === 'failed' || t.state === 'shutdown' ? 'stopped' : 'pending',
        };
        const ingressAddr = t.addresses[INGRESS_NETWORK];
        if (ingressAddr) m.ingressAddress = ingressAddr.ip;
        if (local) m.gwbridgeAddress = local.gw.ip;
        if (ingressItf) m.ingressInterface = ingressItf.ifname;
        return m;
      }),
  };
}

/** A run spec's --user, --cap-add and --cap-drop, as a process plan takes them. */
function privilegesOf(run: RunSpec): Pick<ProcessPlan, 'user' | 'capAdd' | 'capDrop'> {
  return {
    ...(run.user !== undefined ? { user: run.user } : {}),
    ...(run.capAdd?.length ? { capAdd: run.capAdd } : {}),
    ...(run.capDrop?.length ? { capDrop: run.capDrop } : {}),
  };
}
