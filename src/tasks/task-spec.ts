import { createHash } from 'node:crypto';
import { z } from 'zod';
import { CAPABILITY_RULE, normalizeCapability } from './capabilities.js';
import { InvalidTaskSpecError } from './errors.js';
import { healthcheckSchema, type Healthcheck } from './health-check.js';
import { restartPolicySchema, type ServiceRestartPolicy } from './restart-policy.js';
import { parseUserSpec, USER_RULE } from './task-user.js';

/** Task ids become directory names: letters, digits, '_', '.', '-', never '.' or '..'. */
export const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// RFC 1123 label: the kernel accepts 64 bytes, resolvers expect a DNS label.
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const noNul = (s: string): boolean => !s.includes('\0');
const capability = z
  .string()
  .refine((c) => normalizeCapability(c) !== undefined, `capabilities: ${CAPABILITY_RULE}`)
  .transform((c) => normalizeCapability(c)!);

const taskSpecSchema = z.object({
  taskId: z.string().regex(TASK_ID, 'task id: 1-128 letters, digits, "_", "." or "-", starting with a letter or digit'),
  netnsPath: z.string().startsWith('/', 'netnsPath must be an absolute path to a network namespace file').refine(noNul),
  command: z
    .array(z.string().refine(noNul, 'command arguments cannot contain NUL'))
    .min(1, 'command needs at least the program to run')
    .refine((argv) => argv[0] !== '', 'the program (command[0]) cannot be empty'),
  env: z
    .record(z.string(), z.string().refine(noNul, 'environment values cannot contain NUL'))
    .refine((env) => Object.keys(env).every((k) => ENV_NAME.test(k)), 'environment variable names: letters, digits and "_", not starting with a digit')
    .optional(),
  resolvConf: z.string().max(65_536, 'resolvConf is limited to 64 KiB').refine(noNul),
  hostname: z.string().regex(HOSTNAME, 'hostname: a DNS label of 1-63 letters, digits or "-"').optional(),
  cwd: z.string().startsWith('/', 'cwd must be absolute').refine(noNul).optional(),
  user: z.string().refine((u) => parseUserSpec(u) !== undefined, `user: ${USER_RULE}`).optional(),
  capAdd: z.array(capability).optional(),
  capDrop: z.array(capability).optional(),
  healthcheck: healthcheckSchema.optional(),
  restartPolicy: restartPolicySchema.optional(),
});

/** What the agent wants running for one task. */
export interface TaskSpec {
  /** Unique per node; the state directory is `<dir>/<taskId>/`. */
  taskId: string;
  /** The task's network namespace file, made and wired by the agent before the task starts. */
  netnsPath: string;
  /** argv of the task's process; command[0] is looked up in PATH. */
  command: string[];
  /** Added to a minimal environment (PATH, HOME, MESHNET_TASK_ID). */
  env?: Record<string, string>;
  /** Content bind-mounted over /etc/resolv.conf inside the task (nameserver 127.0.0.11 ...). */
  resolvConf: string;
  /** When set, the task gets its own UTS namespace with this hostname. */
  hostname?: string;
  /** Working directory of the process (default `/`). */
  cwd?: string;
  /** Docker's --user (UID[:GID] or NAME[:GROUP]), resolved on the node at each start; default root. */
  user?: string;
  /** Capabilities added to Docker's default set (Docker's names: NET_ADMIN, CAP_NET_ADMIN, ALL). */
  capAdd?: string[];
  /** Capabilities removed from Docker's default set (ALL: keep only capAdd). */
  capDrop?: string[];
  /** Docker's --health-*: run in the task's namespaces; the task is ready only when healthy. Changing it keeps the process. */
  healthcheck?: Healthcheck;
  /** Docker's --restart-*; absent fields keep the supervisor's default. Changing it keeps the process. */
  restartPolicy?: ServiceRestartPolicy;
}

/** Validates a spec at the edge; throws InvalidTaskSpecError naming every problem. */
export function parseTaskSpec(input: unknown): TaskSpec {
  const result = taskSpecSchema.safeParse(input);
  if (!result.success) {
    const taskId = typeof input === 'object' && input !== null ? (input as { taskId?: unknown }).taskId : undefined;
    const problems = result.error.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; ');
    throw new InvalidTaskSpecError(`task ${JSON.stringify(taskId ?? '?')} cannot run: ${problems}`);
  }
  return result.data as TaskSpec;
}

/**
 * Digest of the parts that need a new process when they change. resolv.conf is excluded: it is
 * rewritten in place, and the task sees the new content through its bind mount at once; so are the
 * health check and the restart policy, which the supervisor applies to the running process.
 */
export function specFingerprint(spec: TaskSpec): string {
  const env = Object.entries(spec.env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: unknown[] = [spec.netnsPath, spec.command, env, spec.hostname ?? null, spec.cwd ?? '/'];
  // Appended only when set, so tasks started before these fields existed keep their fingerprint (no restart on upgrade).
  if (spec.user !== undefined || (spec.capAdd?.length ?? 0) > 0 || (spec.capDrop?.length ?? 0) > 0) {
    parts.push(spec.user ?? null, [...new Set(spec.capAdd ?? [])].sort(), [...new Set(spec.capDrop ?? [])].sort());
  }
  const canonical = JSON.stringify(parts);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}
