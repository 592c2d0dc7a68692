import type { LbTable } from '../vip/lb-table.js';
import type { FdbInfo, NeighborInfo } from '../sandbox/rtnl.js';

/**
 * What `meshnet explain` knows of one node's kernel: one read-only view per namespace it needed,
 * as plain JSON-safe data (the agent API serves it as GET /v1/kernel-view). Read by an adapter,
 * judged by pure code.
 */

/** One rule as `iptables-save -c` prints it, with the counters the kernel kept for it. */
export interface CountedRule {
  /** The rule after `-A <chain> `, verbatim. */
  rule: string;
  packets: number;
  bytes: number;
}

/** table -> chain -> rules in order (only the tables explain reads: nat and filter). */
export type CountedIptables = Record<string, Record<string, CountedRule[]>>;

/** A link with its addresses (CIDRs). */
export interface LinkView {
  name: string;
  kind?: string;
  mtu: number;
  up: boolean;
  /** Name of the bridge it is enslaved to. */
  master?: string;
  mac?: string;
  addresses: string[];
  /** Its global v6 addresses (CIDRs), read when the request asks for the v6 side. */
  addresses6?: string[];
  vxlan?: { vni: number; port: number };
}

/** Connections the namespace's conntrack holds per frontend and backend (DNATed entries only). */
export interface ConntrackCount {
  protocol: 'tcp' | 'udp';
  /** The original destination (the frontend the client asked for). */
  dst: string;
  dport: number;
  /** Where the connection was sent (the reply's source). */
  backend: string;
  backendPort: number;
  connections: number;
  /** Packet and byte counters, when net.netfilter.nf_conntrack_acct is on in that namespace. */
  packets?: number;
  bytes?: number;
}

/** The listening sockets of a namespace: TCP in LISTEN, UDP bound (the agent's resolver left out). */
export interface ListeningPorts {
  tcp: number[];
  udp: number[];
}

/** Connections IPVS counts for one destination of one service (ipvsadm -Ln's ActiveConn / InActConn). */
export interface IpvsConnectionCount {
  /** The table entry's id. */
  service: string;
  address: string;
  port: number;
  active: number;
  inactive: number;
}

/**
 * A namespace's load-balancing table as the VIP layer reads it back: the meshnet nftables table, or on IPVS nodes
 * its IPVS services with their mark and SNAT rules; null: there is none.
 */
export interface LbTableView {
  table: LbTable;
  /** False when a skeleton map or chain is missing (nftables), or a mark rule or its hook is (IPVS): it cannot balance as written. */
  skeletonComplete: boolean;
  /** The kernel balancer holding it; absent: nftables (as every view before IPVS was read). */
  backend?: 'ipvs';
  /** IPVS: the connections each destination holds, per service. */
  connections?: IpvsConnectionCount[];
}

/** Common part of every namespace view. */
export interface NamespaceViewBase {
  /** The namespace file read (or "self" for the process's own). */
  path: string;
  exists: boolean;
  links: LinkView[];
  /** What could not be read here, in the tool's own words. */
  errors: string[];
}

/** The host namespace: DOCKER-INGRESS and friends with counters, the gwbridge and the underlay. */
export interface HostView extends NamespaceViewBase {
  iptables: CountedIptables;
  /** The same from ip6tables, when the request asks for the v6 side. */
  ip6tables?: CountedIptables;
}

/** The ingress sandbox: its addresses, its load-balancing table and what conntrack sent where. */
export interface SboxView extends NamespaceViewBase {
  lb: LbTableView | null;
  conntrack: ConntrackCount[];
  /** Its `ip6 meshnet6` table as `nft list` prints it, when the request asks for the v6 side; null: there is none. */
  lb6?: string | null;
}

/** An overlay namespace (br0 + vxlan0): the static entries that carry frames to remote VTEPs. */
export interface OverlayView extends NamespaceViewBase {
  network: string;
  /** FDB entries of vxlan0 (MAC -> remote VTEP). */
  fdb: FdbInfo[];
  /** Neighbour entries of vxlan0 (IP -> MAC). */
  neighbors: NeighborInfo[];
}

/** A task namespace: its links, its REDIRECTs with counters, who listens, and its own VIP table. */
export interface TaskView extends NamespaceViewBase {
  taskId: string;
  /** nat chains of the task (MESHNET-INGRESS REDIRECTs, PREROUTING). */
  nat: Record<string, CountedRule[]>;
  listening: ListeningPorts;
  /** The task's east-west table, when asked for (explain VIP:PORT --from TASK). */
  lb?: LbTableView | null;
  /** The task's `ip6 meshnet6` table as `nft list` prints it (explain [V6VIP]:PORT); null: there is none. */
  lb6?: string | null;
}

/** What to read on one node. */
export interface KernelViewRequest {
  host?: boolean;
  sbox?: boolean;
  /** Overlay networks by name (ov-<name>). */
  overlays?: string[];
  /** Tasks by id; `lb` also reads the task's nftables table. */
  tasks?: { id: string; lb?: boolean; lb6?: boolean }[];
  /** Also the v6 side of the host and the sandbox: links' v6 addresses, ip6tables, the sandbox's ip6 meshnet6 table. */
  v6?: boolean;
}

/** One node's kernel, as read for a request. */
export interface NodeKernelView {
  node: string;
  /** ISO time of the read: counters are as of then. */
  readAt: string;
  host?: HostView;
  sbox?: SboxView;
  overlays: OverlayView[];
  tasks: TaskView[];
}

/** Where explain gets a node's kernel view: read here (the lab, or on the node itself) or from the node's agent API. */
export interface KernelViewSource {
  /** Reads what `request` names on `node`; throws KernelViewUnavailableError when the node cannot be read from here. */
  read(node: string, request: KernelViewRequest): Promise<NodeKernelView>;
}
