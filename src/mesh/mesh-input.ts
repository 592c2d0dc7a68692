import { z } from 'zod';
import { InvalidMeshInputError } from './errors.js';

/**
 * What the mesh needs to know about the cluster, as plain data. The agent maps its store
 * records onto these shapes; nothing here knows about the store.
 */

const port = z.number().int().min(1).max(65535);
// Linux interface names are at most 15 bytes (IFNAMSIZ 16 with the NUL).
const ifname = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a Linux interface name: 1-15 letters, digits, _ . -');
const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'an id: letters, digits, _ . - (at most 128)');

export const portSpecSchema = z.object({
  published: port,
  target: port,
  protocol: z.enum(['tcp', 'udp']),
  /** ingress: on every node through the mesh; host: only where a task runs, straight to it. */
  mode: z.enum(['ingress', 'host']),
  /** cluster: any task, client address SNATed; local: only this node's tasks, client address kept. */
  policy: z.enum(['cluster', 'local']),
});

export const serviceSchema = z.object({
  id,
  name: z.string().min(1).max(128),
  ports: z.array(portSpecSchema),
  /** TCP port of the HTTP health check for policy=local ports (kube-proxy's healthCheckNodePort). */
  healthPort: port.optional(),
  /** How the ingress sandbox spreads new connections over the tasks (`--lb-scheduler`); rr when absent. */
  scheduler: z.enum(['rr', 'wrr', 'lc', 'sh', 'mh', 'random']).optional(),
  /** Client-IP affinity (`--lb-affinity client-ip,SECONDS`): a client keeps its task this long after its last packet. */
  affinityTimeoutSeconds: z.number().int().min(1).max(86_400).optional(),
});

export const taskStateSchema = z.enum(['pending', 'running', 'draining', 'stopped']);

export const taskSchema = z.object({
  id,
  serviceId: id,
  nodeId: id,
  /** running: receives new traffic; draining: keeps its connections, gets no new ones. */
  state: taskStateSchema,
  /** The task's address on the ingress network (absent until attached). */
  ingressAddress: z.ipv4().optional(),
  /** The task's address on the node's gwbridge (needed for mode=host ports). */
  gwbridgeAddress: z.ipv4().optional(),
  /** Name of the task's interface on the ingress network (needed for policy=local return routing). */
  ingressInterface: ifname.optional(),
});

export const meshNodeSchema = z.object({
  nodeId: id,
  gwbridge: z.object({
    // No dots: the name is part of a sysctl key (net.ipv4.conf.<name>.route_localnet).
    name: z.string().regex(/^[A-Za-z0-9_-]{1,15}$/, 'a bridge name: 1-15 letters, digits, _ or -'),
    subnet: z.cidrv4(),
  }),
  sbox: z.object({
    /** The ingress sandbox's address on the gwbridge: where the host DNATs published ports. */
    gwbridgeAddress: z.ipv4(),
    /** The ingress sandbox's address on the ingress network: SNAT source, policy=local next hop. */
    ingressAddress: z.ipv4(),
  }),
  /** The ingress network's subnet (10.255.0.0/16 by default). */
  ingressSubnet: z.cidrv4(),
});

export const meshInputSchema = z.object({
  node: meshNodeSchema,
  services: z.array(serviceSchema),
  tasks: z.array(taskSchema),
  /** Ports something else already holds on this node (the agent's own listeners, other daemons). */
  boundHostPorts: z
    .array(z.object({ protocol: z.enum(['tcp', 'udp']), port, owner: z.string().min(1) }))
    .default([]),
});

export type PortSpec = z.infer<typeof portSpecSchema>;
export type ServiceInput = z.infer<typeof serviceSchema>;
export type TaskState = z.infer<typeof taskStateSchema>;
export type TaskInput = z.infer<typeof taskSchema>;
export type MeshNodeInput = z.infer<typeof meshNodeSchema>;
export type MeshInput = z.input<typeof meshInputSchema>;
export type ValidMeshInput = z.output<typeof meshInputSchema>;

/** Validates mesh input at the edge; throws InvalidMeshInputError naming every bad field. */
export function parseMeshInput(input: unknown): ValidMeshInput {
  const result = meshInputSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new InvalidMeshInputError(`invalid mesh input: ${problems.join('; ')}`);
  }
  return result.data;
}
