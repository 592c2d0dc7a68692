import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CorruptTaskMetaError } from './errors.js';
import type { ProcStat } from './proc-stat.js';

/** Where a task is in its life, as reported to the agent. */
export type TaskState = 'starting' | 'running' | 'exited' | 'failed' | 'shutdown';

const metaSchema = z.object({
  version: z.literal(1),
  taskId: z.string().min(1),
  fingerprint: z.string().min(1),
  spec: z.object({
    netnsPath: z.string(),
    command: z.array(z.string()).min(1),
    env: z.record(z.string(), z.string()).optional(),
    hostname: z.string().optional(),
    cwd: z.string().optional(),
    user: z.string().optional(),
    capAdd: z.array(z.string()).optional(),
    capDrop: z.array(z.string()).optional(),
    // Kept so that a supervisor restarted while a task is down applies the service's policy to it.
    healthcheck: z.looseObject({}).optional(),
    restartPolicy: z.looseObject({}).optional(),
  }),
  state: z.enum(['starting', 'running', 'exited', 'failed', 'shutdown']),
  pid: z.number().int().positive().nullable(),
  startTime: z.number().int().nonnegative().nullable(),
  bootId: z.string(),
  startedAt: z.string().nullable(),
  crashes: z.array(z.number()),
  restarts: z.number().int().nonnegative(),
  lastExit: z
    .object({ code: z.number().int().nullable(), signal: z.string().nullable(), at: z.string() })
    .nullable(),
});

/** The supervisor's record of one task, kept in `<dir>/<taskId>/meta.json`. */
export type TaskMeta = z.infer<typeof metaSchema>;

/** Paths of a task's state directory. */
export interface TaskPaths {
  dir: string;
  meta: string;
  pid: string;
  resolvConf: string;
  log: string;
}

/** The files of task `taskId` under state directory `stateDir`. */
export function taskPaths(stateDir: string, taskId: string): TaskPaths {
  const dir = join(stateDir, taskId);
  return {
    dir,
    meta: join(dir, 'meta.json'),
    pid: join(dir, 'pid'),
    resolvConf: join(dir, 'resolv.conf'),
    log: join(dir, 'stdout.log'),
  };
}

/** Validates parsed meta.json content; throws CorruptTaskMetaError. */
export function parseTaskMeta(path: string, raw: string): TaskMeta {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new CorruptTaskMetaError(path, `not JSON: ${(err as Error).message}`);
  }
  const result = metaSchema.safeParse(json);
  if (!result.success) {
    throw new CorruptTaskMetaError(path, result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  return result.data;
}

/** meta.json of a task, or null when the task has none (never started, or stopped with logs kept). */
export function readTaskMeta(paths: TaskPaths): TaskMeta | null {
  let raw: string;
  try {
    raw = readFileSync(paths.meta, 'utf8');
  } catch {
    return null;
  }
  return parseTaskMeta(paths.meta, raw);
}

/** Pid in the pid file, or null when missing or not a pid. */
export function readPidFile(paths: TaskPaths): number | null {
  try {
    const text = readFileSync(paths.pid, 'utf8').trim();
    return /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** Mode of a task's directory: meta.json holds the task's environment (secrets, often). */
export const TASK_DIR_MODE = 0o700;
/** Mode of the files only the supervisor reads: meta.json, pid, stdout.log. */
export const TASK_FILE_MODE = 0o600;

function writeAtomically(path: string, content: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', TASK_FILE_MODE);
  try {
    // A tmp file left by a crash keeps its old mode through open(): set it.
    fchmodSync(fd, TASK_FILE_MODE);
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Creates the task's directory, or tightens one made by an older meshnet, to TASK_DIR_MODE. */
export function ensureTaskDir(paths: TaskPaths): void {
  mkdirSync(paths.dir, { recursive: true, mode: TASK_DIR_MODE });
  chmodSync(paths.dir, TASK_DIR_MODE);
}

/** Writes meta.json and the pid file so that a crash mid-write leaves the old or the new, never half. */
export function writeTaskMeta(paths: TaskPaths, meta: TaskMeta): void {
  ensureTaskDir(paths);
  writeAtomically(paths.meta, `${JSON.stringify(meta, null, 2)}\n`);
  writeAtomically(paths.pid, meta.pid === null ? '' : `${meta.pid}\n`);
}

/** What /proc says about the pid a task record names. */
export interface ObservedProcess {
  stat: ProcStat | null;
  cmdline: string[] | null;
  /** Inode of the process's network namespace. */
  netnsInode: string | null;
}

/** Whether the process a record names is still that task's process, and if not why. */
export type IdentityVerdict = { alive: true } | { alive: false; reason: string };

/**
 * Decides whether the recorded process is still the task's. The kernel's (boot id, pid, start
 * time) triple names one process for ever: a recycled pid has a later start time. The namespace
 * check also refuses a record edited to point at some other process. The argv is not compared
 * with the command, because programs may legitimately rewrite it (nginx) or exec another one.
 */
export function judgeIdentity(
  meta: TaskMeta,
  pidFromFile: number | null,
  observed: ObservedProcess,
  currentBootId: string,
  expectedNetnsInode: string | null,
): IdentityVerdict {
  if (meta.pid === null || meta.startTime === null) return { alive: false, reason: 'no process recorded' };
  if (pidFromFile !== meta.pid) {
    return { alive: false, reason: `pid file (${pidFromFile ?? 'missing'}) disagrees with meta.json (${meta.pid})` };
  }
  if (meta.bootId !== currentBootId) return { alive: false, reason: 'recorded during an earlier boot' };
  const { stat, cmdline } = observed;
  if (stat === null || cmdline === null) return { alive: false, reason: `process ${meta.pid} is gone` };
  if (stat.state === 'Z' || stat.state === 'X') return { alive: false, reason: `process ${meta.pid} has exited` };
  if (stat.startTime !== meta.startTime) {
    return { alive: false, reason: `pid ${meta.pid} now belongs to another process (start time ${stat.startTime}, recorded ${meta.startTime})` };
  }
  if (cmdline.length === 0) return { alive: false, reason: `pid ${meta.pid} is a kernel thread or exiting` };
  if (expectedNetnsInode !== null && observed.netnsInode !== expectedNetnsInode) {
    return { alive: false, reason: `process ${meta.pid} is not in the task's network namespace ${meta.spec.netnsPath}` };
  }
  return { alive: true };
}
