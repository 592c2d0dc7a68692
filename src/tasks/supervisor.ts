import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fchmodSync, openSync, readdirSync, readFileSync, rmSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { homeNetnsIdentity } from '../sandbox/netns-switch.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { SupervisorClosedError, TaskError } from './errors.js';
import { readBootId, readCmdline, readProcessNetnsInode, readProcStat } from './proc-stat.js';
import { decideAfterTaskExit, DEFAULT_RESTART_POLICY, restartPolicySchema, validateRestartPolicy, type ExitOutcome, type RestartPolicy } from './restart-policy.js';
import { describeResult, healthcheckSchema, healthDiffers, initialHealth, type HealthResult, type HealthState, type HealthStatus } from './health-check.js';
import { HealthMonitor } from './health-check-monitor.js';
import { runHealthCheck } from './health-check-runner.js';
import { DEFAULT_LOG_LIMITS, rotateIdleLog, rotateLiveLog, type LogLimits } from './log-rotation.js';
import { ensureTaskDir, judgeIdentity, readPidFile, readTaskMeta, TASK_FILE_MODE, taskPaths, writeTaskMeta, type TaskMeta, type TaskPaths, type TaskState } from './task-meta.js';
import { exitReason } from './task-reason.js';
import { describeExit, ROOT_USER, signalGroup, spawnTask, taskPrivileges, type TaskPrivileges } from './task-process.js';
import { resolveUser, systemAccounts, UnknownUserError } from './task-user.js';
import { lockStateDir } from './state-dir-lock.js';
import { ExitWatch } from './exit-watch.js';
import { parseTaskSpec, specFingerprint, TASK_ID, type TaskSpec } from './task-spec.js';

/** Where task state lives unless configured: tmpfs, so a reboot forgets processes that are gone anyway. */
export const DEFAULT_TASKS_DIR = '/run/meshnet/tasks';

/** A change in a task's life, for the agent to write to the store. */
export interface TaskStateEvent {
  taskId: string;
  state: TaskState;
  /** For people: why, with exit status and what happens next. */
  message: string;
  pid: number | null;
  /** Exit status of the process that just ended (state `exited`/`failed`); null when unknown (adopted) or killed by a signal. */
  exitCode: number | null;
  signal: string | null;
  /** Times the process was started again after an exit, over the task's life on this node. */
  restarts: number;
  at: string;
  /** The task's health when it has a health check. */
  health?: HealthStatus;
}

/** What the supervisor knows about one task. */
export interface TaskInfo {
  taskId: string;
  state: TaskState;
  pid: number | null;
  /** True when this supervisor found the process running rather than starting it. */
  adopted: boolean;
  restarts: number;
  startedAt: string | null;
  lastExit: { code: number | null; signal: string | null; at: string } | null;
  netnsPath: string;
  command: string[];
  logPath: string;
  /** Why a task found on disk was or was not adopted. */
  note?: string;
  /** Why the process last ended or could not start, short (`exit 3`, `killed by SIGKILL`); undefined when it never did. */
  reason?: string;
  /** Health of the running process when the task has a health check (the log spans restarts). */
  health?: HealthState;
}

/** Options of a TaskSupervisor. */
export interface TaskSupervisorOptions {
  /** State directory (default /run/meshnet/tasks); one supervisor per directory. */
  stateDir?: string;
  restartPolicy?: Partial<RestartPolicy>;
  /** How often processes this supervisor did not start are checked for liveness (default 250 ms). */
  pollIntervalMs?: number;
  /** stdout.log is rotated once larger than this, at a (re)start and while the task runs (default 16 MiB). */
  maxLogBytes?: number;
  /** Files of a task's log kept, the live one included: stdout.log, stdout.log.1, ... (default 3). */
  maxLogFiles?: number;
  /** How often running tasks' logs are checked against maxLogBytes (default 5000 ms). */
  logCheckIntervalMs?: number;
  onStateChange?: (event: TaskStateEvent) => void;
  /** Clock for the crash window (tests). */
  now?: () => number;
  /** Where the supervisor says what it found and did (default: nothing). */
  log?: Logger;
}

/** Options of stop() and reap(). */
export interface StopOptions {
  /** Time between SIGTERM and SIGKILL (default 10 s, as `docker stop`). */
  graceMs?: number;
  /** Keep stdout.log in the task directory. */
  keepLogs?: boolean;
}

interface Entry {
  spec: TaskSpec;
  fingerprint: string;
  paths: TaskPaths;
  meta: TaskMeta;
  child: ChildProcess | null;
  adopted: boolean;
  restartTimer: NodeJS.Timeout | null;
  stopping: boolean;
  note?: string;
  /** Why the process last ended or could not start (TaskInfo.reason), when known better than lastExit tells. */
  reason?: string;
  /** The running process's health check clock; null without a check or a process. */
  health: HealthMonitor | null;
  /** Results kept across restarts, so the operator sees why the previous process was restarted. */
  healthLog: HealthResult[];
  /** The health the last process had when it ended: shown until the next one starts. */
  lastHealth?: HealthState;
  /** The result that made the process unhealthy, while it is being stopped for it. */
  unhealthy: HealthResult | null;
  /** SIGKILL of an unhealthy process that ignores SIGTERM. */
  killTimer: NodeJS.Timeout | null;
}

const DEFAULT_GRACE_MS = 10_000;
const KILL_WAIT_MS = 5_000;

function specFromMeta(meta: TaskMeta, resolvConf: string): TaskSpec {
  return {
    taskId: meta.taskId,
    netnsPath: meta.spec.netnsPath,
    command: meta.spec.command,
    resolvConf,
    ...(meta.spec.env ? { env: meta.spec.env } : {}),
    ...(meta.spec.hostname !== undefined ? { hostname: meta.spec.hostname } : {}),
    ...(meta.spec.cwd !== undefined ? { cwd: meta.spec.cwd } : {}),
    ...(meta.spec.user !== undefined ? { user: meta.spec.user } : {}),
    ...(meta.spec.capAdd !== undefined ? { capAdd: meta.spec.capAdd } : {}),
    ...(meta.spec.capDrop !== undefined ? { capDrop: meta.spec.capDrop } : {}),
    ...lifecycleFromMeta(meta.spec),
  };
}

/** The health check and restart policy meta.json recorded, when still valid (the agent's next spec replaces them). */
function lifecycleFromMeta(spec: TaskMeta['spec']): Pick<TaskSpec, 'healthcheck' | 'restartPolicy'> {
  const health = healthcheckSchema.safeParse(spec.healthcheck);
  const restart = restartPolicySchema.safeParse(spec.restartPolicy);
  return { ...(health.success ? { healthcheck: health.data } : {}), ...(restart.success ? { restartPolicy: restart.data } : {}) };
}

/** What meta.json records of a spec: enough to restart the task after the supervisor itself restarted. */
function metaSpec(spec: TaskSpec): TaskMeta['spec'] {
  return {
    netnsPath: spec.netnsPath,
    command: spec.command,
    ...(spec.env ? { env: spec.env } : {}),
    ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
    ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
    ...(spec.user !== undefined ? { user: spec.user } : {}),
    ...(spec.capAdd !== undefined ? { capAdd: spec.capAdd } : {}),
    ...(spec.capDrop !== undefined ? { capDrop: spec.capDrop } : {}),
    ...(spec.healthcheck !== undefined ? { healthcheck: spec.healthcheck } : {}),
    ...(spec.restartPolicy !== undefined ? { restartPolicy: { ...spec.restartPolicy } } : {}),
  };
}

// nsfs is one device: a namespace file is a file on that device.
const NSFS_DEV = homeNetnsIdentity().split(':')[0];

function namespaceInode(path: string): string | null {
  try {
    const st = statSync(path);
    return String(st.dev) === NSFS_DEV ? String(st.ino) : null;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts, watches, restarts and stops task processes on one node. Processes outlive the
 * supervisor: a new one on the same state directory adopts them without restarting them.
 */
export class TaskSupervisor {
  readonly stateDir: string;
  private readonly policy: RestartPolicy;
  private readonly pollIntervalMs: number;
  private readonly exits = new ExitWatch();
  private readonly logLimits: LogLimits;
  private readonly logTimer: NodeJS.Timeout;
  private readonly onStateChange: ((event: TaskStateEvent) => void) | undefined;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private pollTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly unlock: () => void;
  private readonly logger: Logger;

  constructor(options: TaskSupervisorOptions = {}) {
    this.stateDir = options.stateDir ?? DEFAULT_TASKS_DIR;
    if (!this.stateDir.startsWith('/')) throw new TaskError('TASK_INVALID_OPTION', `stateDir must be absolute, got ${JSON.stringify(this.stateDir)}`);
    this.policy = validateRestartPolicy({ ...DEFAULT_RESTART_POLICY, ...options.restartPolicy });
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.logLimits = { maxBytes: options.maxLogBytes ?? DEFAULT_LOG_LIMITS.maxBytes, maxFiles: options.maxLogFiles ?? DEFAULT_LOG_LIMITS.maxFiles };
    if (!(this.logLimits.maxBytes >= 1) || !Number.isInteger(this.logLimits.maxFiles) || this.logLimits.maxFiles < 1) {
      throw new TaskError('TASK_INVALID_OPTION', `maxLogBytes must be positive and maxLogFiles a whole number from 1, got ${this.logLimits.maxBytes} and ${this.logLimits.maxFiles}`);
    }
    this.onStateChange = options.onStateChange;
    this.now = options.now ?? Date.now;
    this.logger = (options.log ?? silentLogger()).child({ component: 'tasks' });
    // 0700 when meshnet makes it: task directories hold environments; an existing directory is the operator's.
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    this.unlock = lockStateDir(this.stateDir);
    // Every 5 s: a stat per task per check was a quarter of an idle agent's CPU at 100 tasks checking every
    // second; a task can overshoot its 16 MB log by what it writes in 5 s before the copy-truncate.
    this.logTimer = setInterval(() => this.rotateRunningLogs(), options.logCheckIntervalMs ?? 5000);
    this.logTimer.unref();
  }

  /** Starts the task unless it runs already (idempotent); a changed command, env, hostname or namespace replaces the process. */
  async ensureRunning(input: TaskSpec): Promise<TaskInfo> {
    this.assertOpen();
    const spec = parseTaskSpec(input);
    const fingerprint = specFingerprint(spec);
    return this.serial(spec.taskId, async () => {
      let entry = this.entries.get(spec.taskId) ?? this.loadFromDisk(spec.taskId);
      if (entry && entry.fingerprint !== fingerprint) {
        this.emit(entry, 'starting', 'the task spec changed: replacing the process', null, null);
        await this.terminate(entry, DEFAULT_GRACE_MS);
        this.entries.delete(spec.taskId);
        entry = undefined;
      }
      if (entry) {
        entry.spec = spec;
        this.writeResolvConf(entry);
        this.syncLifecycle(entry);
        return this.info(entry);
      }
      const paths = taskPaths(this.stateDir, spec.taskId);
      const previous = readTaskMetaSafe(paths);
      const fresh: Entry = {
        spec,
        fingerprint,
        paths,
        meta: {
          version: 1,
          taskId: spec.taskId,
          fingerprint,
          spec: metaSpec(spec),
          state: 'starting',
          pid: null,
          startTime: null,
          bootId: readBootId(),
          startedAt: null,
          crashes: [],
          restarts: previous?.restarts ?? 0,
          lastExit: null,
        },
        child: null,
        adopted: false,
        restartTimer: null,
        stopping: false,
        health: null,
        healthLog: [],
        unhealthy: null,
        killTimer: null,
      };
      this.entries.set(spec.taskId, fresh);
      this.start(fresh);
      return this.info(fresh);
    });
  }

  /** Stops the task: SIGTERM to its process group, SIGKILL after the grace; removes its directory. Idempotent. */
  async stop(taskId: string, options: StopOptions = {}): Promise<void> {
    if (!TASK_ID.test(taskId)) throw new TaskError('TASK_INVALID_ID', `invalid task id ${JSON.stringify(taskId)}`);
    await this.serial(taskId, async () => {
      const entry = this.entries.get(taskId) ?? this.loadFromDisk(taskId, { watch: false });
      const paths = taskPaths(this.stateDir, taskId);
      if (entry) {
        await this.terminate(entry, options.graceMs ?? DEFAULT_GRACE_MS);
        this.entries.delete(taskId);
        this.emit(entry, 'shutdown', `stopped${entry.meta.lastExit ? ` (${describeExit(entry.meta.lastExit.code, entry.meta.lastExit.signal)})` : ''}`, null, null);
      }
      this.removeTaskDir(paths, options.keepLogs ?? false);
      this.updatePolling();
    });
  }

  /** Finds the tasks in the state directory, adopts the live processes without restarting them, restarts the dead ones. */
  async adoptOrphans(): Promise<TaskInfo[]> {
    this.assertOpen();
    const found: TaskInfo[] = [];
    for (const taskId of this.taskIdsOnDisk()) {
      const info = await this.serial(taskId, async () => {
        const entry = this.entries.get(taskId) ?? this.loadFromDisk(taskId);
        return entry ? this.info(entry) : null;
      });
      if (info) found.push(info);
    }
    return found;
  }

  /** Stops every task (known or found on disk) whose id is not in `keepIds`; returns the ids stopped. */
  async reap(keepIds: Iterable<string>, options: StopOptions = {}): Promise<string[]> {
    const keep = new Set(keepIds);
    const ids = new Set([...this.entries.keys(), ...this.taskIdsOnDisk()]);
    const stopped: string[] = [];
    for (const id of [...ids].sort()) {
      if (keep.has(id)) continue;
      await this.stop(id, options);
      stopped.push(id);
    }
    return stopped;
  }

  /** The tasks this supervisor runs or watches, sorted by id. */
  list(): TaskInfo[] {
    return [...this.entries.values()].map((e) => this.info(e)).sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
  }

  /** Whether this supervisor knows the task (no TaskInfo built: the reconciler asks it of every task on every pass). */
  has(taskId: string): boolean {
    return this.entries.has(taskId);
  }

  /** The task's current state, or undefined when this supervisor does not know it. */
  get(taskId: string): TaskInfo | undefined {
    const entry = this.entries.get(taskId);
    return entry ? this.info(entry) : undefined;
  }

  /** Stops watching and restarting; the processes keep running for the next supervisor to adopt. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unlock();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.exits.close();
    this.pollTimer = null;
    clearInterval(this.logTimer);
    for (const entry of this.entries.values()) {
      if (entry.restartTimer) clearTimeout(entry.restartTimer);
      entry.restartTimer = null;
      this.stopHealth(entry);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new SupervisorClosedError();
  }

  private serial<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(taskId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(taskId, tail);
    void tail.then(() => {
      if (this.locks.get(taskId) === tail) this.locks.delete(taskId);
    });
    return next;
  }

  private taskIdsOnDisk(): string[] {
    if (!existsSync(this.stateDir)) return [];
    return readdirSync(this.stateDir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && TASK_ID.test(d.name) && existsSync(taskPaths(this.stateDir, d.name).meta))
      .map((d) => d.name)
      .sort();
  }

  /**
   * Registers a task recorded on disk: adopted when its process still is the recorded one,
   * otherwise treated as an exit (restart under the policy) unless it had failed.
   */
  private loadFromDisk(taskId: string, { watch = true } = {}): Entry | undefined {
    const paths = taskPaths(this.stateDir, taskId);
    let meta: TaskMeta | null;
    try {
      meta = readTaskMeta(paths);
    } catch (err) {
      this.log('task_meta_corrupt', { taskId, error: (err as Error).message });
      return undefined;
    }
    if (meta === null || meta.taskId !== taskId) return undefined;
    let resolvConf = '';
    try {
      resolvConf = readFileSync(paths.resolvConf, 'utf8');
    } catch {
      // Rewritten from the next ensureRunning; a restart before then gets an empty one.
    }
    const entry: Entry = {
      spec: specFromMeta(meta, resolvConf),
      fingerprint: meta.fingerprint,
      paths,
      meta,
      child: null,
      adopted: false,
      restartTimer: null,
      stopping: false,
      health: null,
      healthLog: [],
      unhealthy: null,
      killTimer: null,
    };
    const pid = meta.pid;
    const verdict = judgeIdentity(
      meta,
      readPidFile(paths),
      pid === null ? { stat: null, cmdline: null, netnsInode: null } : { stat: readProcStat(pid), cmdline: readCmdline(pid), netnsInode: readProcessNetnsInode(pid) },
      readBootId(),
      namespaceInode(meta.spec.netnsPath),
    );
    this.entries.set(taskId, entry);
    if (verdict.alive) {
      entry.adopted = true;
      entry.meta.state = 'running';
      entry.note = `adopted running process ${pid}`;
      this.startHealth(entry);
      this.emit(entry, 'running', entry.note, null, null);
      this.updatePolling();
      return entry;
    }
    entry.meta.pid = null;
    entry.meta.startTime = null;
    if (meta.state === 'failed' || meta.state === 'shutdown') {
      entry.note = `${meta.state === 'failed' ? 'failed' : 'completed'} before the supervisor restarted; not restarted`;
      return entry;
    }
    entry.note = `not adopted: ${verdict.reason}`;
    if (watch) {
      this.onGone(entry, null, null, null, entry.note);
    } else {
      entry.meta.state = 'exited';
    }
    return entry;
  }

  private start(entry: Entry): void {
    if (this.closed || entry.stopping) return;
    entry.restartTimer = null;
    entry.adopted = false;
    entry.meta.state = 'starting';
    this.emit(entry, 'starting', entry.meta.restarts > 0 ? `restart #${entry.meta.restarts}` : 'starting', null, null);
    if (namespaceInode(entry.spec.netnsPath) === null) {
      this.persist(entry);
      this.onGone(entry, null, null, null, `network namespace ${entry.spec.netnsPath} does not exist`);
      return;
    }
    let privileges: TaskPrivileges;
    try {
      privileges = taskPrivileges(entry.spec, entry.spec.user === undefined ? ROOT_USER : resolveUser(entry.spec.user, systemAccounts));
    } catch (err) {
      if (!(err instanceof UnknownUserError)) throw err;
      // Restarting cannot help until the operator acts: fail now rather than crash-loop.
      this.failNow(entry, `cannot start: ${err.message}; then stop and start the task again`, err.message);
      return;
    }
    let logFd: number;
    try {
      ensureTaskDir(entry.paths);
      this.writeResolvConf(entry);
      rotateIdleLog(entry.paths.log, this.logLimits);
      logFd = openSync(entry.paths.log, 'a', TASK_FILE_MODE);
      fchmodSync(logFd, TASK_FILE_MODE);
    } catch (err) {
      this.persist(entry);
      this.onGone(entry, null, null, null, `cannot prepare ${entry.paths.dir}: ${(err as Error).message}`);
      return;
    }
    let child: ChildProcess;
    try {
      child = spawnTask(entry.spec, entry.paths.resolvConf, logFd, privileges);
    } finally {
      closeSync(logFd);
    }
    let settled = false;
    child.once('error', (err) => {
      if (settled) return;
      settled = true;
      if (entry.child === child) entry.child = null;
      this.onGone(entry, child.pid ?? null, null, null, `cannot start: ${err.message} (is util-linux installed?)`);
    });
    const pid = child.pid;
    if (pid === undefined) return; // 'error' follows
    const stat = readProcStat(pid);
    entry.child = child;
    entry.meta.pid = pid;
    entry.meta.startTime = stat?.startTime ?? null;
    entry.meta.startedAt = new Date(this.now()).toISOString();
    entry.meta.state = 'running';
    this.persist(entry);
    this.startHealth(entry);
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      if (entry.child === child) entry.child = null;
      this.onGone(entry, pid, code, signal, null);
    });
    this.emit(entry, 'running', `started process ${pid}`, null, null);
  }

  /** The task cannot start until the operator changes something: failed at once, no restart. */
  private failNow(entry: Entry, message: string, reason: string): void {
    entry.reason = reason;
    entry.meta.state = 'failed';
    entry.meta.pid = null;
    entry.meta.startTime = null;
    this.persist(entry);
    this.emit(entry, 'failed', message, null, null);
    this.updatePolling();
  }

  /** The task's process ended (or never started): record it and restart, complete or fail under the policy. */
  private onGone(entry: Entry, pid: number | null, code: number | null, signal: string | null, reason: string | null): void {
    if (pid !== null && entry.meta.pid !== pid) return; // a process this entry no longer tracks
    // As when a container's init exits: whatever the task left behind in its group dies with it,
    // so a restart never finds a stray daemon holding the task's port.
    if (pid !== null) killGroupLeftovers(pid);
    const unhealthy = entry.unhealthy;
    this.stopHealth(entry);
    entry.meta.pid = null;
    entry.meta.startTime = null;
    entry.adopted = false;
    if (pid !== null || reason === null) entry.meta.lastExit = { code, signal, at: new Date(this.now()).toISOString() };
    entry.reason = reason ?? (unhealthy ? `unhealthy (${describeResult(unhealthy)})` : exitReason(code, signal));
    // A stop or replacement in progress owns the record (and may be deleting the directory).
    if (entry.stopping || this.closed || this.entries.get(entry.meta.taskId) !== entry) return;
    const what = reason ?? (unhealthy ? `process ${pid} stopped as unhealthy (${describeResult(unhealthy)})` : `process ${pid} ${describeExit(code, signal)}`);
    // Exit 0 is a success unless the process was stopped for being unhealthy; an adopted process's status is unknown.
    const outcome: ExitOutcome = unhealthy === null && reason === null && code === 0 && signal === null ? 'success' : 'failure';
    const decision = decideAfterTaskExit(this.policy, entry.spec.restartPolicy, entry.meta.crashes, this.now(), outcome);
    entry.meta.crashes = decision.crashes;
    if (decision.action === 'stop') {
      entry.meta.state = decision.final === 'failed' ? 'failed' : 'shutdown';
      this.persist(entry);
      const next = decision.final === 'failed' ? `${decision.why} (stop and start the task again once fixed)` : `complete, ${decision.why}`;
      this.emit(entry, entry.meta.state, `${what}; ${next}`, code, signal);
      this.updatePolling();
      return;
    }
    entry.meta.state = 'exited';
    this.persist(entry);
    this.emit(entry, 'exited', `${what}; ${decision.why}`, code, signal);
    entry.restartTimer = setTimeout(() => {
      void this.serial(entry.meta.taskId, async () => {
        if (entry.restartTimer === null || entry.stopping || this.entries.get(entry.meta.taskId) !== entry) return;
        entry.restartTimer = null;
        entry.meta.restarts++;
        this.start(entry);
      });
    }, decision.delayMs);
    entry.restartTimer.unref();
    this.updatePolling();
  }

  /** Starts the health check clock of the entry's running process, when its spec has a check. */
  private startHealth(entry: Entry): void {
    this.stopHealth(entry);
    const check = entry.spec.healthcheck;
    const pid = entry.meta.pid;
    if (!check || pid === null) return;
    const startTime = entry.meta.startTime;
    const startedAt = entry.meta.startedAt === null ? this.now() : Date.parse(entry.meta.startedAt);
    entry.health = new HealthMonitor({
      check,
      processStartedAt: Number.isFinite(startedAt) ? startedAt : this.now(),
      initial: initialHealth(entry.healthLog),
      probe: (c) => this.probe(entry, pid, startTime, c),
      onResult: (state, previous) => this.onHealth(entry, pid, state, previous),
      now: this.now,
    });
  }

  private stopHealth(entry: Entry): void {
    if (entry.health) {
      entry.healthLog = entry.health.health.log;
      entry.lastHealth = entry.health.health;
    }
    entry.health?.stop();
    entry.health = null;
    entry.unhealthy = null;
    if (entry.killTimer) clearTimeout(entry.killTimer);
    entry.killTimer = null;
  }

  /** A changed health check or restart policy applies to the running process: no restart. */
  private syncLifecycle(entry: Entry): void {
    const check = entry.spec.healthcheck;
    if (!check) {
      if (entry.health) this.stopHealth(entry);
    } else if (entry.health) {
      entry.health.reconfigure(check);
    } else if (entry.meta.pid !== null && !entry.stopping) {
      this.startHealth(entry);
    }
    if (JSON.stringify(entry.meta.spec.healthcheck ?? null) !== JSON.stringify(check ?? null) || JSON.stringify(entry.meta.spec.restartPolicy ?? null) !== JSON.stringify(entry.spec.restartPolicy ?? null)) {
      entry.meta.spec = metaSpec(entry.spec);
      this.persist(entry);
    }
  }

  /** One check of `pid`, only while it still is the entry's process (a recycled pid is never entered). */
  private probe(entry: Entry, pid: number, startTime: number | null, check: NonNullable<TaskSpec['healthcheck']>): Promise<HealthResult> {
    const at = new Date(this.now()).toISOString();
    const failed = (output: string): Promise<HealthResult> => Promise.resolve({ exitCode: -1, output, start: at, end: at });
    const st = readProcStat(pid);
    if (entry.meta.pid !== pid || st === null || (startTime !== null && st.startTime !== startTime)) return failed(`process ${pid} is gone`);
    let privileges: TaskPrivileges;
    try {
      privileges = taskPrivileges(entry.spec, entry.spec.user === undefined ? ROOT_USER : resolveUser(entry.spec.user, systemAccounts));
    } catch (err) {
      return failed(`cannot run the health check: ${(err as Error).message}`);
    }
    return runHealthCheck({ pid, spec: entry.spec, privileges }, check, this.now);
  }

  /** A check's result: reported when the health changed; an unhealthy process is stopped, to be restarted under the policy. */
  private onHealth(entry: Entry, pid: number, state: HealthState, previous: HealthState): void {
    entry.healthLog = state.log;
    if (entry.meta.pid !== pid || entry.stopping || !healthDiffers(previous, state)) return;
    const last = state.log.at(-1);
    this.logger.info({ event: 'task.health', taskId: entry.meta.taskId, pid, status: state.status, failingStreak: state.failingStreak, exitCode: last?.exitCode });
    if (state.status !== 'unhealthy' || previous.status === 'unhealthy' || !last) {
      this.emit(entry, 'running', `health: ${state.status}${state.failingStreak > 0 && last ? ` (${describeResult(last)}, ${state.failingStreak} in a row)` : ''}`, null, null);
      return;
    }
    // Swarm replaces an unhealthy task; here the process is stopped and the restart policy decides, in place.
    entry.unhealthy = last;
    this.emit(entry, 'running', `unhealthy (${describeResult(last)}): stopping process ${pid}`, null, null);
    this.signalUnhealthy(pid, 'SIGTERM');
    entry.killTimer = setTimeout(() => {
      if (entry.meta.pid === pid) this.signalUnhealthy(pid, 'SIGKILL');
    }, DEFAULT_GRACE_MS);
    entry.killTimer.unref();
  }

  private signalUnhealthy(pid: number, signal: NodeJS.Signals): void {
    try {
      signalGroup(pid, signal);
    } catch (err) {
      this.log('unhealthy_signal_failed', { pid, signal, error: (err as Error).message });
    }
  }

  /** Stops the entry's process (if any) and cancels restarts; the entry stays registered. */
  private async terminate(entry: Entry, graceMs: number): Promise<void> {
    entry.stopping = true;
    if (entry.restartTimer) clearTimeout(entry.restartTimer);
    entry.restartTimer = null;
    this.stopHealth(entry);
    const pid = entry.meta.pid;
    const startTime = entry.meta.startTime;
    if (pid === null) return;
    const alive = (): boolean => {
      const st = readProcStat(pid);
      return st !== null && st.state !== 'Z' && st.state !== 'X' && (startTime === null || st.startTime === startTime);
    };
    if (alive()) {
      signalGroup(pid, 'SIGTERM');
      if (!(await waitUntil(() => !alive(), graceMs))) {
        signalGroup(pid, 'SIGKILL');
        if (!(await waitUntil(() => !alive(), KILL_WAIT_MS))) {
          throw new TaskError('TASK_UNKILLABLE', `process ${pid} of task ${entry.meta.taskId} survived SIGKILL for ${KILL_WAIT_MS} ms (stuck in the kernel?); check /proc/${pid}/stack`);
        }
      }
    }
    // Leftovers of the group (children that ignored SIGTERM) must not outlive the task.
    killGroupLeftovers(pid);
    if (entry.meta.pid === pid) {
      entry.meta.pid = null;
      entry.meta.startTime = null;
    }
    entry.child = null;
  }

  private updatePolling(): void {
    const needed = !this.closed && [...this.entries.values()].some((e) => e.adopted && e.meta.pid !== null && !e.stopping);
    if (needed && !this.pollTimer) {
      this.pollTimer = setInterval(() => this.pollAdopted(), this.pollIntervalMs);
      this.pollTimer.unref();
    } else if (!needed && this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
      this.exits.close();
    }
  }

  /**
   * Processes this supervisor did not start send it no exit: each is watched through a pidfd (one
   * syscall a tick for all, exit-watch.ts), or, where the system has none, through /proc on every tick.
   */
  private pollAdopted(): void {
    const endedNow = this.exits.ended();
    // The usual tick, four times a second: nothing ended and every adopted task is watched. It then
    // costs one poll(2) and a walk that allocates nothing (the full pass below built two sets each time).
    if (endedNow.length === 0 && !this.hasUnwatchedAdopted()) return;
    const ended = new Set(endedNow);
    const watched = new Set<number>();
    for (const entry of [...this.entries.values()]) {
      if (!entry.adopted || entry.stopping || entry.meta.pid === null) continue;
      const pid = entry.meta.pid;
      if (this.exits.has(pid) && !ended.has(pid)) {
        watched.add(pid);
        continue;
      }
      // New to the watch (checked once that the number still is the recorded process), ended, or unwatchable.
      const fresh = !this.exits.has(pid) && this.exits.add(pid);
      const st = readProcStat(pid);
      if (st === null || st.state === 'Z' || st.state === 'X' || st.startTime !== entry.meta.startTime) {
        this.onGone(entry, pid, null, null, null);
        continue;
      }
      if (fresh) watched.add(pid);
    }
    this.exits.retain(watched);
  }

  /** Whether an adopted task still running has no exit watch yet (adopted since the last tick, or unwatchable). */
  private hasUnwatchedAdopted(): boolean {
    for (const entry of this.entries.values()) {
      if (entry.adopted && !entry.stopping && entry.meta.pid !== null && !this.exits.has(entry.meta.pid)) return true;
    }
    return false;
  }

  private writeResolvConf(entry: Entry): void {
    let current: string | null = null;
    try {
      current = readFileSync(entry.paths.resolvConf, 'utf8');
    } catch {
      // first start
    }
    // In place (same inode): a running task's bind mount shows the new content at once.
    if (current !== entry.spec.resolvConf) writeFileSync(entry.paths.resolvConf, entry.spec.resolvConf, { mode: 0o644 });
  }

  /** Bounds the logs of running tasks, started here or adopted, between (re)starts too. */
  private rotateRunningLogs(): void {
    for (const entry of this.entries.values()) {
      if (entry.meta.pid === null || entry.stopping) continue;
      try {
        if (rotateLiveLog(entry.paths.log, this.logLimits)) this.logger.debug({ event: 'task.log_rotated', taskId: entry.meta.taskId, maxBytes: this.logLimits.maxBytes });
      } catch (err) {
        this.log('log_rotation_failed', { taskId: entry.meta.taskId, error: (err as Error).message });
      }
    }
  }

  private persist(entry: Entry): void {
    try {
      writeTaskMeta(entry.paths, entry.meta);
    } catch (err) {
      this.log('task_meta_write_failed', { taskId: entry.meta.taskId, error: (err as Error).message });
    }
  }

  private removeTaskDir(paths: TaskPaths, keepLogs: boolean): void {
    if (!keepLogs) {
      rmSync(paths.dir, { recursive: true, force: true });
      return;
    }
    for (const p of [paths.meta, paths.pid, paths.resolvConf, `${paths.meta}.tmp`, `${paths.pid}.tmp`]) rmSync(p, { force: true });
  }

  private info(entry: Entry): TaskInfo {
    const last = entry.meta.lastExit;
    const reason = entry.reason ?? (last ? exitReason(last.code, last.signal) : undefined);
    const health = entry.spec.healthcheck ? (entry.health?.health ?? entry.lastHealth ?? initialHealth(entry.healthLog)) : undefined;
    return {
      taskId: entry.meta.taskId,
      state: entry.meta.state,
      pid: entry.meta.pid,
      adopted: entry.adopted,
      restarts: entry.meta.restarts,
      startedAt: entry.meta.startedAt,
      lastExit: entry.meta.lastExit,
      netnsPath: entry.spec.netnsPath,
      command: entry.spec.command,
      logPath: entry.paths.log,
      ...(entry.note !== undefined ? { note: entry.note } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(health ? { health } : {}),
    };
  }

  private emit(entry: Entry, state: TaskState, message: string, exitCode: number | null, signal: string | null): void {
    const event: TaskStateEvent = {
      taskId: entry.meta.taskId,
      state,
      message,
      pid: entry.meta.pid,
      exitCode,
      signal,
      restarts: entry.meta.restarts,
      at: new Date(this.now()).toISOString(),
      ...(entry.health ? { health: entry.health.health.status } : {}),
    };
    if (!this.onStateChange) return;
    try {
      this.onStateChange(event);
    } catch (err) {
      this.log('task_listener_failed', { taskId: event.taskId, error: (err as Error).message });
    }
  }

  private log(event: string, fields: Record<string, unknown>): void {
    this.logger.warn({ event: `task.${event}`, ...fields });
  }
}

/**
 * SIGKILL to what remains of the process group led by `pid`, which just died. While a group has
 * members its id cannot be handed out as a new pid, so this reaches only the task's own leftovers.
 */
function killGroupLeftovers(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is empty
  }
}

function readTaskMetaSafe(paths: TaskPaths): TaskMeta | null {
  try {
    return readTaskMeta(paths);
  } catch {
    return null;
  }
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(20, Math.max(1, deadline - Date.now())));
  }
}
