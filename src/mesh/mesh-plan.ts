import type { L4Protocol, VirtualService } from '../vip/lb-table.js';
import type { MeshConflictError } from './errors.js';
import type { SysctlSetting } from './iptables-ruleset.js';

/** What one node must hold for the routing mesh, as plain comparable data. */
export interface MeshPlan {
  nodeId: string;
  host: HostPlan;
  sbox: SboxPlan;
  /** One entry per local task of a service with ingress-published ports. */
  tasks: TaskPlan[];
  /** One HTTP health port per policy=local service that declares one. */
  health: HealthPortPlan[];
  /** Claims the plan left out; everything else still applies. */
  conflicts: MeshConflictError[];
}

/** A port published through the mesh: the host DNATs it to the ingress sandbox. */
export interface IngressPort {
  protocol: L4Protocol;
  port: number;
}

/** A mode=host port: the host DNATs it straight to one local task. */
export interface HostModePort {
  protocol: L4Protocol;
  port: number;
  serviceId: string;
  taskId: string;
  taskAddress: string;
  targetPort: number;
}

export interface HostPlan {
  gwbridge: { name: string; subnet: string };
  sboxAddress: string;
  ingressPorts: IngressPort[];
  hostModePorts: HostModePort[];
  sysctls: SysctlSetting[];
}

export interface SboxPlan {
  /** Entries for the VIP layer's table in ingress_sbox (fwmark frontends). */
  virtualServices: VirtualService[];
  sysctls: SysctlSetting[];
}

/** Inside a task: published port -> target port on the task's ingress address. */
export interface TaskRedirect {
  protocol: L4Protocol;
  address: string;
  port: number;
  targetPort: number;
}

/**
 * Policy routing that makes a task answer real client addresses (policy=local, no SNAT)
 * through the local ingress sandbox instead of its default route: a rule
 * `from <address> lookup <table>` and, in that table, the ingress subnet on-link and a
 * default route via the sandbox's ingress address.
 */
export interface ReturnRoute {
  from: string;
  table: number;
  priority: number;
  device: string;
  routes: { to: string; via?: string }[];
}

export interface TaskPlan {
  taskId: string;
  serviceId: string;
  redirects: TaskRedirect[];
  returnRoute: ReturnRoute | null;
}

export interface HealthPortPlan {
  serviceId: string;
  serviceName: string;
  port: number;
  /** Running tasks of the service on this node: 0 answers 503. */
  localTasks: number;
  /** Served on the host's v6 addresses too (the ingress network is dual stack); absent: v4 only. */
  v6?: boolean;
}
