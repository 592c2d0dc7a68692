import { z } from 'zod';
import { InvalidDnsInputError } from './errors.js';

/**
 * What one task may resolve: only the networks it is attached to, in the task's own order
 * (an unqualified name that exists on several of them resolves on the first, as in Swarm).
 * Plain data, so the agent can compute it with pure functions and compare it cheaply.
 */
export interface NameView {
  networks: NetworkView[];
}

/** One network as seen from a task attached to it. */
export interface NetworkView {
  name: string;
  services: ServiceView[];
  tasks: TaskView[];
}

/** `vip`: the name answers the virtual IP; `dnsrr`: the name answers the task IPs, shuffled. */
export type EndpointMode = 'vip' | 'dnsrr';

/** A published port; SRV `_<port>._<protocol>.<service>` (target or published port) points at it. */
export interface PortView {
  protocol: 'tcp' | 'udp';
  targetPort: number;
  publishedPort: number;
}

/** A service on one network: its VIP there (null in dnsrr mode) and its running tasks' IPs there. */
export interface ServiceView {
  name: string;
  aliases: string[];
  endpointMode: EndpointMode;
  vip: string | null;
  taskIps: string[];
  ports: PortView[];
  /** Dual-stack networks only: the v6 VIP (AAAA of the name) and the running tasks' v6 addresses (AAAA of tasks.). */
  vip6?: string;
  taskIps6?: string[];
}

/** A task (container) on one network: its name and aliases resolve to `ip`. */
export interface TaskView {
  name: string;
  aliases: string[];
  ip: string;
  /** Its v6 address on a dual-stack network. */
  ip6?: string;
}

/** A service as the store knows it, reduced to what names need. */
export interface ServiceRecord {
  name: string;
  aliases?: string[];
  endpointMode: EndpointMode;
  /**
   * The networks the service is on; `vip` is required in `vip` mode. `aliases` answer on that network only
   * (Docker's --network name=N,alias=A), as the service's name does there: VIP or task IPs, and `tasks.<alias>`.
   */
  attachments: { network: string; vip?: string | null; vip6?: string; aliases?: string[] }[];
  ports?: PortView[];
}

/** A task as the store knows it, reduced to what names need. */
export interface TaskRecord {
  name: string;
  /** Name of the service the task belongs to ('' for a task of no service). */
  service: string;
  aliases?: string[];
  /** Only running tasks are answered: a stopped task's IP must not be handed out. */
  running: boolean;
  ips: { network: string; ip: string; ip6?: string }[];
}

/** Input of buildNameView: the whole cluster's records plus the networks of the task being served. */
export interface NameViewInput {
  taskNetworks: string[];
  services: ServiceRecord[];
  tasks: TaskRecord[];
}

/** Computes what a task attached to `taskNetworks` may resolve (pure; output order is deterministic). */
export function buildNameView(input: NameViewInput): NameView {
  const networks: NetworkView[] = [];
  const seen = new Set<string>();
  for (const network of input.taskNetworks) {
    if (seen.has(network)) continue;
    seen.add(network);
    const tasks: TaskView[] = [];
    const ipsByService = new Map<string, string[]>();
    const ips6ByService = new Map<string, string[]>();
    for (const task of input.tasks) {
      if (!task.running) continue;
      const at = task.ips.find((a) => a.network === network);
      if (!at) continue;
      tasks.push({ name: task.name, aliases: [...(task.aliases ?? [])], ip: at.ip, ...(at.ip6 !== undefined ? { ip6: at.ip6 } : {}) });
      if (task.service) {
        const list = ipsByService.get(task.service) ?? [];
        list.push(at.ip);
        ipsByService.set(task.service, list);
        if (at.ip6 !== undefined) ips6ByService.set(task.service, [...(ips6ByService.get(task.service) ?? []), at.ip6]);
      }
    }
    const services: ServiceView[] = [];
    for (const svc of input.services) {
      const at = svc.attachments.find((a) => a.network === network);
      if (!at) continue;
      services.push({
        name: svc.name,
        aliases: [...new Set([...(svc.aliases ?? []), ...(at.aliases ?? [])])],
        endpointMode: svc.endpointMode,
        vip: svc.endpointMode === 'vip' ? (at.vip ?? null) : null,
        taskIps: [...(ipsByService.get(svc.name) ?? [])].sort(compareIpv4),
        ports: (svc.ports ?? []).map((p) => ({ ...p })),
        ...dualStackFields(svc.endpointMode === 'vip' ? at.vip6 : undefined, ips6ByService.get(svc.name)),
      });
    }
    services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    tasks.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    networks.push({ name: network, services, tasks });
  }
  return { networks };
}

/** The v6 fields of a service view: present only when the network gave the service or its tasks v6 addresses. */
function dualStackFields(vip6: string | undefined, taskIps6: string[] | undefined): Pick<ServiceView, 'vip6' | 'taskIps6'> {
  return { ...(vip6 !== undefined ? { vip6 } : {}), ...(taskIps6 !== undefined ? { taskIps6: [...taskIps6].sort() } : {}) };
}

function compareIpv4(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

// A name we serve: dot-separated labels of letters, digits, '-' and '_' (Swarm task names
// contain dots and digits), at most 63 bytes per label and 253 in all.
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const dnsName = z
  .string()
  .min(1)
  .max(253)
  .refine((s) => s.split('.').every((l) => LABEL.test(l)), { message: 'not a valid DNS name' });
const ipv4 = z.ipv4();
const ipv6 = z.ipv6();
const port = z.number().int().min(1).max(65535);

const nameViewSchema = z.object({
  networks: z.array(
    z.object({
      name: dnsName,
      services: z.array(
        z.object({
          name: dnsName,
          aliases: z.array(dnsName),
          endpointMode: z.enum(['vip', 'dnsrr']),
          vip: ipv4.nullable(),
          taskIps: z.array(ipv4),
          ports: z.array(z.object({ protocol: z.enum(['tcp', 'udp']), targetPort: port, publishedPort: port })),
          vip6: ipv6.optional(),
          taskIps6: z.array(ipv6).optional(),
        }),
      ),
      tasks: z.array(z.object({ name: dnsName, aliases: z.array(dnsName), ip: ipv4, ip6: ipv6.optional() })),
    }),
  ),
});

/** Checks a NameView at the edge; throws InvalidDnsInputError naming the bad field. */
export function validateNameView(view: unknown): NameView {
  const parsed = nameViewSchema.safeParse(view);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidDnsInputError(
      `invalid name view at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'rejected'}; ` +
        'names must be DNS labels (letters, digits, - and _), addresses IPv4 (ip, vip) or IPv6 (ip6, vip6) literals',
    );
  }
  return parsed.data as NameView;
}
