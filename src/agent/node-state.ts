import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { ClusterSnapshot } from '../model/cluster.js';
import { attachedNetworks } from '../model/cluster.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../model/records.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import type { OverlayInput, LocalEndpoint, RemoteEndpoint } from '../overlay/overlay-spec.js';
import { cidrContains, intToIpv4, ipv4ToInt, macForIpv4, parseCidr } from '../sandbox/addresses.js';
import type { IngressEndpoint } from './ingress-endpoint.js';
import { buildNameView, type NameView, type ServiceRecord as DnsService, type TaskRecord as DnsTask } from '../dns/name-view.js';
import type { MeshInput } from '../mesh/mesh-input.js';

/** This node's fixed settings, from the agent's configuration. */
export interface NodeSettings {
  nodeId: string;
  /** Where this node keeps its namespaces (tasks, overlays, ingress_sbox). */
  netnsDir: string;
  underlayIp: string;
  underlayMtu: number;
  gwbridge: { name: string; subnet: string; gateway: string; sboxAddress: string };
}

/** One network interface of a local task. */
export interface TaskInterface {
  network: string;
  ifname: string;
  ip: string;
  mac: string;
}

/** A task this node must run, with everything needed to wire and start it. */
export interface LocalTask {
  record: TaskRecord;
  service: ServiceRecord;
  /** e.g. web.2 */
  name: string;
  sandbox: string;
  interfaces: TaskInterface[];
  /** The task's leg on the node's gwbridge: default route and host-mode ports. */
  gw: { ifname: string; hostIf: string; ip: string; mac: string };
  /** The process should run (false while draining: kept alive, given no new connections). */
  draining: boolean;
  /** Run by another runtime: wired here, never started, stopped or pruned by meshnet. */
  external: boolean;
}

/** Everything this node's kernel and processes should hold, as plain data. */
export interface NodeState {
  tasks: LocalTask[];
  overlays: OverlayInput[];
  /** This node's ingress sandbox endpoint, when the cluster has an ingress network. */
  ingress: { network: NetworkRecord; endpoint: IngressEndpoint } | null;
  dnsViews: { sandbox: string; view: NameView }[];
  mesh: MeshInput | null;
}

/** Name of the ingress sandbox namespace (Docker's ingress_sbox). */
export const INGRESS_SBOX = 'ingress_sbox';

/** Host-side name of a task's gwbridge veth: stable, within 15 characters. */
export function gwHostIfName(taskId: string): string {
  return `mg${createHash('sha256').update(taskId).digest('hex').slice(0, 11)}`;
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
  for (const id of taskIds) {
    const ip = current[id];
    if (ip && cidrContains(gw.subnet, ip) && !used.has(ip)) {
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

const taskName = (t: TaskRecord) => `${t.service}.${t.slot}`;

/** Pure: the desired state of this node, from the cluster snapshot and what only this node knows. */
export function desiredNodeState(input: {
  snapshot: ClusterSnapshot;
  settings: NodeSettings;
  ingressEndpoints: readonly IngressEndpoint[];
  /** task id -> gwbridge address, as found in the kernel. */
  currentGw: Readonly<Record<string, string>>;
  /** Ports other programs hold on this host: publishing them here is refused. */
  boundHostPorts?: readonly { protocol: 'tcp' | 'udp'; port: number; owner: string }[];
}): NodeState {
  const { snapshot, settings } = input;
  const me = settings.nodeId;
  const liveNodes = new Map(snapshot.nodes.map((n) => [n.id, n]));
  const networks = new Map(snapshot.networks.map((n) => [n.name, n]));
  const services = new Map(snapshot.services.map((s) => [s.name, s]));
  const ingressNet = [...networks.values()].find((n) => n.ingress) ?? null;
  const myIngress = input.ingressEndpoints.find((e) => e.node === me && liveNodes.has(e.node));

  // Tasks that exist on live nodes and whose service exists; ours are wired even before they run.
  const alive = snapshot.tasks.filter((t) => liveNodes.has(t.node) && services.has(t.service));
  // Our own tasks live in our namespace directory; attached ones wherever their runtime put them.
  const mine = alive.filter((t) => t.node === me && (t.external || t.sandbox.startsWith(`${settings.netnsDir}/`)));
  const gwIps = assignGwAddresses(mine.map((t) => t.id).sort(), input.currentGw, settings.gwbridge);

  const tasks: LocalTask[] = mine.map((record) => {
    const service = services.get(record.service)!;
    const interfaces: TaskInterface[] = taskNetworks(service)
      .filter((n) => record.addresses[n] && networks.has(n))
      .map((network, i) => ({ network, ifname: `eth${i}`, ip: record.addresses[network]!.ip, mac: record.addresses[network]!.mac }));
    const gwIp = gwIps[record.id]!;
    return {
      record,
      service,
      name: taskName(record),
      sandbox: record.sandbox,
      interfaces,
      gw: { ifname: `eth${interfaces.length}`, hostIf: gwHostIfName(record.id), ip: gwIp, mac: macForIpv4(gwIp) },
      draining: record.desiredState === 'shutdown',
      external: record.external === true,
    };
  });

  // One overlay per network that has a local endpoint (ingress: always, for the sandbox).
  const overlays: OverlayInput[] = [];
  for (const net of networks.values()) {
    const local: LocalEndpoint[] = [];
    for (const t of tasks) {
      const itf = t.interfaces.find((i) => i.network === net.name);
      if (itf) local.push({ id: t.record.id, sandbox: t.sandbox, ifname: itf.ifname, ip: itf.ip, mac: itf.mac });
    }
    if (net.ingress && myIngress) {
      local.push({ id: `sbox-${me}`, sandbox: join(settings.netnsDir, INGRESS_SBOX), ifname: 'eth0', ip: myIngress.ip, mac: myIngress.mac });
    }
    if (local.length === 0) continue;
    const remote: RemoteEndpoint[] = [];
    for (const t of alive) {
      const addr = t.addresses[net.name];
      if (t.node === me || !addr) continue;
      remote.push({ ip: addr.ip, mac: addr.mac, vtep: liveNodes.get(t.node)!.underlayIp });
    }
    if (net.ingress) {
      for (const e of input.ingressEndpoints) {
        if (e.node !== me && liveNodes.has(e.node)) remote.push({ ip: e.ip, mac: e.mac, vtep: liveNodes.get(e.node)!.underlayIp });
      }
    }
    overlays.push({
      network: { name: net.name, vni: net.vni, subnet: net.subnet, gateway: net.gateway },
      underlayMtu: settings.underlayMtu,
      localVtep: settings.underlayIp,
      local,
      remote,
    });
  }
  overlays.sort((a, b) => a.network.name.localeCompare(b.network.name));

  // DNS: a task sees the services and tasks of its own networks; the ingress network has no names (as in Swarm).
  const dnsServices: DnsService[] = snapshot.services.map((s) => ({
    name: s.name,
    endpointMode: s.endpointMode,
    attachments: attachedNetworks(s)
      .filter((n) => n !== INGRESS_NETWORK)
      .map((n) => ({ network: n, vip: s.endpointMode === 'vip' ? (s.vips[n] ?? null) : null })),
    ports: s.ports.map((p) => ({ protocol: p.protocol, targetPort: p.target, publishedPort: p.published })),
  }));
  const dnsTasks: DnsTask[] = alive.map((t) => ({
    name: taskName(t),
    service: t.service,
    running: t.state === 'running' && t.desiredState === 'running',
    ips: Object.entries(t.addresses)
      .filter(([n]) => n !== INGRESS_NETWORK)
      .map(([network, a]) => ({ network, ip: a.ip })),
  }));
  const dnsViews = tasks.map((t) => ({
    sandbox: t.sandbox,
    view: buildNameView({
      taskNetworks: t.interfaces.map((i) => i.network).filter((n) => n !== INGRESS_NETWORK),
      services: dnsServices,
      tasks: dnsTasks,
    }),
  }));

  let mesh: MeshInput | null = null;
  if (ingressNet && myIngress) {
    mesh = {
      node: {
        nodeId: me,
        gwbridge: { name: settings.gwbridge.name, subnet: settings.gwbridge.subnet },
        sbox: { gwbridgeAddress: settings.gwbridge.sboxAddress, ingressAddress: myIngress.ip },
        ingressSubnet: ingressNet.subnet,
      },
      boundHostPorts: [...(input.boundHostPorts ?? [])],
      services: snapshot.services.filter((s) => s.ports.length > 0).map((s) => {
        const svc: MeshInput['services'][number] = {
          id: s.name,
          name: s.name,
          ports: s.ports.map((p) => ({ published: p.published, target: p.target, protocol: p.protocol, mode: p.mode, policy: p.policy })),
        };
        if (s.healthPort) svc.healthPort = s.healthPort;
        return svc;
      }),
      tasks: alive
        .filter((t) => services.get(t.service)!.ports.length > 0)
        .map((t) => {
          const local = tasks.find((l) => l.record.id === t.id);
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

  return { tasks, overlays, ingress: ingressNet && myIngress ? { network: ingressNet, endpoint: myIngress } : null, dnsViews, mesh };
}
