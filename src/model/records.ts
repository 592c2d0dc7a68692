import { z } from 'zod';
import { RecordInvalidError } from './model-errors.js';
import { parseIpv4, parseSubnet } from './ipv4.js';
import { isIpv6, parseSubnet6 } from './ipv6.js';
import { CAPABILITY_RULE, CAPABILITIES, normalizeCapability } from '../tasks/capabilities.js';
import { parseUserSpec, USER_RULE } from '../tasks/task-user.js';
import { healthcheckSchema, healthcheckSpecSchema, taskHealthSchema } from '../tasks/health-check.js';
import { restartPolicySchema, restartPolicySpecSchema } from '../tasks/restart-policy.js';
import { PreviousSpecRecordSchema, UpdateConfigRecordSchema, UpdateConfigSpecSchema, UpdateStatusRecordSchema } from './rollout-records.js';
import { PlacementRecordSchema, PlacementSpecSchema, PlacementUpdateSchema, serviceModeSchema } from './service-placement.js';
import { AliasesSchema } from './service-aliases.js';

// Schemas of everything the model stores (validated on every read and write) and of the specs users submit.
// Records are plain JSON so every agent, whatever its version, reads the same thing.
// Stored records are loose objects: a field added by a newer meshnet is accepted and kept on every read-modify-write,
// so an older agent neither drops it nor takes the record for garbage (and the object for deleted). What users
// submit (specs, updates) stays strict, so a typo is an error at the edge, not a silently stored field.

/**
 * One grammar for the names of services, networks and nodes: a DNS label (RFC 1123), as Docker requires. A name
 * becomes a DNS name (`<service>`, `tasks.<service>`), a hostname, a store key segment and interface-name material,
 * so anything wider breaks a later layer (issue 11, High 4).
 */
export const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** The rule NAME follows, for messages. */
export const NAME_RULE = 'lowercase letters, digits and "-", 1-63 characters, not starting or ending with "-"';
/** Network names are shorter: the overlay namespace is named after the network, within 40 characters. */
export const MAX_NETWORK_NAME = 40;
/** The rule a network name follows, for messages. */
export const NETWORK_NAME_RULE = `lowercase letters, digits and "-", 1-${MAX_NETWORK_NAME} characters, not starting or ending with "-"`;
/** Environment variable names, as POSIX shells accept them. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why `name` is not a valid name of a `kind` (service, network, node), or undefined when it is. */
export function nameProblem(kind: 'service' | 'network' | 'node', name: string): string | undefined {
  const limit = kind === 'network' ? MAX_NETWORK_NAME : 63;
  if (NAME.test(name) && name.length <= limit) return undefined;
  return `invalid ${kind} name ${JSON.stringify(name)}: use ${kind === 'network' ? NETWORK_NAME_RULE : NAME_RULE}`;
}

const nameSchema = z.string().regex(NAME, `must be ${NAME_RULE}`);
const networkNameSchema = z.string().regex(NAME, `must be ${NETWORK_NAME_RULE}`).max(MAX_NETWORK_NAME, `must be ${NETWORK_NAME_RULE}`);
const noNul = (s: string): boolean => !s.includes('\0');
const envSchema = z.record(z.string(), z.string().refine(noNul, 'environment values cannot contain NUL')).superRefine((env, ctx) => {
  // Checked here rather than as the record's key schema, whose failure zod reports without the message.
  for (const name of Object.keys(env)) {
    if (!ENV_NAME.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'environment variable names are letters, digits and "_", not starting with a digit' });
    }
  }
});
const commandSchema = z.array(z.string().refine(noNul, 'command arguments cannot contain NUL')).min(1, 'needs at least the program to run');
const userSchema = z.string().refine((u) => parseUserSpec(u) !== undefined, `user must be ${USER_RULE}`);
/** Stored capability names are canonical (NET_ADMIN, ALL); users may write cap_net_admin, normalised on the way in. */
const storedCapabilitySchema = z.enum([...CAPABILITIES, 'ALL'], `must be ${CAPABILITY_RULE}`);
const capabilitySpecSchema = z
  .string()
  .refine((c) => normalizeCapability(c) !== undefined, `must be ${CAPABILITY_RULE}`)
  .transform((c) => normalizeCapability(c)!);
const ipv4Schema = z.string().refine((s) => parseIpv4(s) !== undefined, 'must be a dotted-quad IPv4 address');
const subnetSchema = z.string().refine((s) => parseSubnet(s) !== undefined, 'must be an IPv4 CIDR like 10.0.1.0/24 with host bits zero');
const ipv6Schema = z.string().refine(isIpv6, 'must be an IPv6 address');
/** A node's underlay (VTEP) address: v4, or v6 for a v6 underlay (records of older agents hold v4). */
const underlaySchema = z.string().refine((s) => parseIpv4(s) !== undefined || isIpv6(s), 'must be an IPv4 or IPv6 address');
const subnet6Schema = z.string().refine((s) => parseSubnet6(s) !== undefined, 'must be an IPv6 CIDR like fd00:1::/64 with host bits zero');
const portNumber = z.number().int().min(1).max(65535);
const stringMap = z.record(z.string(), z.string());

/** A host running an agent; stored under the agent's lease so it disappears when the agent dies (liveness). */
export const NodeRecordSchema = z.looseObject({
  id: nameSchema,
  name: z.string().min(1).max(253),
  underlayIp: underlaySchema,
  labels: stringMap.optional(),
  lease: z.string().regex(/^\d+$/, 'must be a store lease id'),
});
/** A stored node. */
export type NodeRecord = z.infer<typeof NodeRecordSchema>;

/** What the scheduler may do with a node: Docker's availability (active: new tasks, pause: none, drain: none and move its tasks). */
export const NODE_AVAILABILITIES = ['active', 'pause', 'drain'] as const;
/** A node's availability. */
export type NodeAvailability = (typeof NODE_AVAILABILITIES)[number];

/** Node label keys: Docker's reverse-DNS style (com.example.zone), letters, digits, ".", "-", "_" and "/". */
export const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;
/** The rule LABEL_KEY follows, for messages. */
export const LABEL_KEY_RULE = 'letters, digits, ".", "-", "_" and "/", 1-253 characters, starting and ending with a letter or digit';
const labelKeySchema = z.string().regex(LABEL_KEY, `label keys must be ${LABEL_KEY_RULE}`);
const labelValueSchema = z.string().max(4096).refine(noNul, 'label values cannot contain NUL');
const labelsSchema = z.record(z.string(), labelValueSchema).superRefine((labels, ctx) => {
  // Checked here rather than as the record's key schema, whose failure zod reports without the message.
  for (const key of Object.keys(labels)) {
    if (!LABEL_KEY.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: `label keys must be ${LABEL_KEY_RULE}` });
  }
});

/**
 * What must outlive a node's agent: its address for `node ls`, and what operators set (availability, labels).
 * Not under a lease, so a dead node stays listed (as down) until `meshnet node rm`; the leased NodeRecord stays
 * the liveness signal.
 */
export const NodeInfoRecordSchema = z.looseObject({
  id: nameSchema,
  name: z.string().min(1).max(253),
  underlayIp: underlaySchema,
  availability: z.enum(NODE_AVAILABILITIES),
  labels: labelsSchema,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
/** A node's persistent record. */
export type NodeInfoRecord = z.infer<typeof NodeInfoRecordSchema>;

/** What `meshnet node update` may change. */
export const NodeUpdateSchema = z.strictObject({
  availability: z.enum(NODE_AVAILABILITIES, `availability must be one of ${NODE_AVAILABILITIES.join(', ')}`).optional(),
  labelAdd: labelsSchema.optional(),
  labelRm: z.array(labelKeySchema).optional(),
});
/** A node update as operators give it. */
export type NodeUpdate = z.input<typeof NodeUpdateSchema>;

/** An overlay network (the ingress network is one with ingress: true). */
export const NetworkRecordSchema = z.looseObject({
  name: networkNameSchema,
  driver: z.literal('overlay'),
  subnet: subnetSchema,
  gateway: ipv4Schema,
  vni: z.number().int().min(1).max(16_777_215),
  ingress: z.boolean(),
  options: stringMap,
  /** Dual stack (--ipv6): the v6 subnet and br0's v6 address; absent on v4-only networks. */
  subnet6: subnet6Schema.optional(),
  gateway6: ipv6Schema.optional(),
});
/** A stored network. */
export type NetworkRecord = z.infer<typeof NetworkRecordSchema>;

/** A published port as stored: `published` is always concrete. */
export const PortRecordSchema = z.looseObject({
  published: portNumber,
  target: portNumber,
  protocol: z.enum(['tcp', 'udp']),
  mode: z.enum(['ingress', 'host']),
  policy: z.enum(['cluster', 'local']),
});
/** A stored published port. */
export type PortRecord = z.infer<typeof PortRecordSchema>;

const schedulerSchema = z.enum(['rr', 'wrr', 'lc', 'sh', 'mh', 'random']);
const affinitySeconds = z.number().int().min(1).max(86_400);

/** Load-balancing choices of a stored service (names follow IPVS schedulers). */
export const LbRecordSchema = z.looseObject({
  scheduler: schedulerSchema,
  affinity: z.looseObject({ timeoutSeconds: affinitySeconds }).optional(),
});
/** Load-balancing choices. */
export type LbRecord = z.infer<typeof LbRecordSchema>;

/** Load-balancing choices as users give them. */
export const LbSpecSchema = z.strictObject({
  scheduler: schedulerSchema,
  affinity: z.strictObject({ timeoutSeconds: affinitySeconds }).optional(),
});

/** A replicated service. `vips` has one entry per attached network, plus `ingress` when it publishes in ingress mode. */
export const ServiceRecordSchema = z.looseObject({
  name: nameSchema,
  networks: z.array(networkNameSchema),
  vips: z.record(networkNameSchema, ipv4Schema),
  /** The v6 VIP on each dual-stack network (src/model/ipv6.ts: the v4 VIP's twin); absent when none is. */
  vips6: z.record(networkNameSchema, ipv6Schema).optional(),
  endpointMode: z.enum(['vip', 'dnsrr']),
  ports: z.array(PortRecordSchema),
  replicas: z.number().int().min(0).max(10_000),
  command: commandSchema,
  env: envSchema.optional(),
  lb: LbRecordSchema,
  healthPort: portNumber.optional(),
  /** Docker's --user: UID[:GID] or NAME[:GROUP], resolved on each node; absent: root. */
  user: userSchema.optional(),
  /** Capabilities added to Docker's default set (canonical names, or ALL). */
  capAdd: z.array(storedCapabilitySchema).optional(),
  /** Capabilities removed from Docker's default set (ALL: keep only capAdd). */
  capDrop: z.array(storedCapabilitySchema).optional(),
  /** Rolling updates (src/model/rolling-update.ts): the spec version tasks are compared to; absent: 0. */
  version: z.number().int().min(0).optional(),
  /** Bumped by `service update --force` so every task is replaced with no other change. */
  forceUpdate: z.number().int().min(0).optional(),
  updateConfig: UpdateConfigRecordSchema.optional(),
  rollbackConfig: UpdateConfigRecordSchema.optional(),
  updateStatus: UpdateStatusRecordSchema.optional(),
  previousSpec: PreviousSpecRecordSchema.optional(),
  /** Absent: replicated. Global: one task per eligible node, `replicas` unused (src/model/service-placement.ts). */
  mode: serviceModeSchema.optional(),
  /** Docker's --constraint and --replicas-max-per-node; absent: any node, no cap. */
  placement: PlacementRecordSchema.optional(),
  /** DNS aliases by network (Docker's --network name=N,alias=A), answered on that network only; absent: none. */
  aliases: AliasesSchema.optional(),
  /** Docker's --health-*: the task is ready only when healthy; absent: ready when listening. */
  healthcheck: healthcheckSchema.optional(),
  /** Docker's --restart-*; absent (or an absent field): meshnet's default, 100 ms doubling to 5 s, failed after 5 exits in 60 s. */
  restartPolicy: restartPolicySchema.optional(),
});
/** A stored service. */
export type ServiceRecord = z.infer<typeof ServiceRecordSchema>;

/** One replica of a service, bound to a node. */
export const TaskRecordSchema = z.looseObject({
  id: z.string().regex(/^[a-z0-9]{8,64}$/, 'must be 8-64 lowercase letters or digits'),
  service: nameSchema,
  slot: z.number().int().min(1),
  node: nameSchema,
  addresses: z.record(networkNameSchema, z.looseObject({ ip: ipv4Schema, mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/), ip6: ipv6Schema.optional() })),
  sandbox: z.string().startsWith('/', 'must be an absolute netns path'),
  /** Run by another runtime and attached with `meshnet task attach`: meshnet wires it, never starts or stops it. */
  external: z.boolean().optional(),
  desiredState: z.enum(['running', 'shutdown']),
  state: z.enum(['new', 'starting', 'running', 'failed', 'shutdown']),
  restarts: z.number().int().min(0),
  message: z.string().optional(),
  updatedAt: z.iso.datetime(),
  /** The service version whose spec this task runs; absent: 0, the version of services before rolling updates. */
  specVersion: z.number().int().min(0).optional(),
  /** Health of a task whose service has a health check (status, failures in a row, results that changed it). */
  health: taskHealthSchema.optional(),
  /** A start-first successor: the id of the outdated task of its slot it replaces once ready (src/model/successor-task.ts). */
  replaces: z.string().optional(),
});
/** A stored task. */
export type TaskRecord = z.infer<typeof TaskRecordSchema>;

/** A published port as users give it: published 0 or omitted means "pick one from 30000-32767". */
export const PortSpecSchema = z.strictObject({
  published: z.number().int().min(0).max(65535).optional(),
  target: portNumber,
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  mode: z.enum(['ingress', 'host']).default('ingress'),
  policy: z.enum(['cluster', 'local']).default('cluster'),
});
/** A published port spec (input). */
export type PortSpec = z.input<typeof PortSpecSchema>;

/** What a user submits to create a service; defaults follow Docker. */
export const ServiceSpecSchema = z.strictObject({
  name: nameSchema,
  networks: z.array(networkNameSchema).default([]),
  endpointMode: z.enum(['vip', 'dnsrr']).default('vip'),
  ports: z.array(PortSpecSchema).default([]),
  replicas: z.number().int().min(0).max(10_000).default(1),
  command: commandSchema,
  env: envSchema.optional(),
  lb: LbSpecSchema.default({ scheduler: 'rr' }),
  healthPort: portNumber.optional(),
  user: userSchema.optional(),
  capAdd: z.array(capabilitySpecSchema).optional(),
  capDrop: z.array(capabilitySpecSchema).optional(),
  updateConfig: UpdateConfigSpecSchema.optional(),
  rollbackConfig: UpdateConfigSpecSchema.optional(),
  mode: serviceModeSchema.optional(),
  placement: PlacementSpecSchema.optional(),
  aliases: AliasesSchema.optional(),
  healthcheck: healthcheckSpecSchema.optional(),
  restartPolicy: restartPolicySpecSchema.optional(),
});
/** A service spec as users write it. */
export type ServiceSpec = z.input<typeof ServiceSpecSchema>;
/** A service spec with defaults applied. */
export type NormalizedServiceSpec = z.output<typeof ServiceSpecSchema>;

/** What updateService may change; networks and endpoint mode are fixed at creation. */
export const ServiceUpdateSchema = z.strictObject({
  /** The whole network list (network-add/rm): VIPs are claimed and released as create does. */
  networks: z.array(networkNameSchema).optional(),
  updateConfig: UpdateConfigSpecSchema.optional(),
  rollbackConfig: UpdateConfigSpecSchema.optional(),
  /** Replace every task even when nothing else changes (Docker's --force). */
  force: z.boolean().optional(),
  replicas: z.number().int().min(0).max(10_000).optional(),
  command: commandSchema.optional(),
  env: envSchema.optional(),
  lb: LbSpecSchema.optional(),
  ports: z.array(PortSpecSchema).optional(),
  healthPort: portNumber.optional(),
  /** Only to refuse a change: the mode is fixed at creation. */
  mode: serviceModeSchema.optional(),
  placement: PlacementUpdateSchema.optional(),
  /** Replaces the whole alias map (every network's list); networks the service does not list are refused. */
  aliases: AliasesSchema.optional(),
  /** The whole new health check; null removes it (--no-healthcheck). */
  healthcheck: healthcheckSpecSchema.nullable().optional(),
  /** The whole new restart policy. */
  restartPolicy: restartPolicySpecSchema.optional(),
});
/** A service update. */
export type ServiceUpdate = z.input<typeof ServiceUpdateSchema>;

/** What createNetwork accepts. */
export const NetworkSpecSchema = z.strictObject({
  name: networkNameSchema,
  subnet: subnetSchema.optional(),
  /** Dual stack: give tasks and VIPs an IPv6 address too. */
  ipv6: z.boolean().optional(),
  /** The v6 subnet (implies ipv6); a ULA /64 is chosen when ipv6 is set without it. */
  subnet6: subnet6Schema.optional(),
  ingress: z.boolean().default(false),
  options: stringMap.default({}),
});
/** A network spec as users write it. */
export type NetworkSpec = z.input<typeof NetworkSpecSchema>;

/** What registerNode accepts. */
export const NodeSpecSchema = z.strictObject({
  id: nameSchema.optional(),
  name: z.string().min(1).max(253),
  underlayIp: underlaySchema,
  labels: stringMap.optional(),
});
/** A node registration as agents write it. */
export type NodeSpec = z.input<typeof NodeSpecSchema>;

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(record)'}: ${issue.message}`);
}

/** Validates `value` against `schema`, throwing RecordInvalidError naming `kind` and `where` on failure. */
export function validate<S extends z.ZodType>(schema: S, kind: string, where: string, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new RecordInvalidError(kind, where, describeIssues(result.error));
  return result.data;
}

/** Parses a stored JSON value and validates it. */
export function decodeRecord<S extends z.ZodType>(schema: S, kind: string, key: string, json: string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new RecordInvalidError(kind, `at ${key}`, ['stored value is not JSON']);
  }
  return validate(schema, kind, `at ${key}`, value);
}

/** Validates a record and serialises it for the store. */
export function encodeRecord<S extends z.ZodType>(schema: S, kind: string, key: string, value: z.input<S>): string {
  return JSON.stringify(validate(schema, kind, `for ${key}`, value));
}

/** The fields of `value` that `schema` does not know (written by a newer meshnet), to carry into a rewritten record. */
export function unknownFields(schema: z.ZodObject, value: object): Record<string, unknown> {
  const known = new Set(Object.keys(schema.shape));
  return Object.fromEntries(Object.entries(value).filter(([field]) => !known.has(field)));
}
