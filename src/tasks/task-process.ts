import { spawn, type ChildProcess } from 'node:child_process';
import { closeOnExecAll } from '../runtime/process-fds.js';
import { effectiveCapabilities, type Capability, type CapabilityName } from './capabilities.js';
import type { TaskSpec } from './task-spec.js';
import type { ResolvedUser } from './task-user.js';

/**
 * Runs inside the task's fresh mount namespace, before the task: bind-mounts the prepared
 * resolv.conf over /etc/resolv.conf, sets the hostname (its own UTS namespace), then execs the
 * task so that the pid the supervisor holds is the task's own. Every value arrives as a
 * positional parameter and is only ever quoted, never parsed: no task text becomes shell code.
 */
const INIT_SCRIPT = [
  'mount --bind "$1" /etc/resolv.conf || { echo "meshnet: cannot bind-mount $1 over /etc/resolv.conf" >&2; exit 125; }',
  'if [ -n "$2" ]; then printf %s "$2" > /proc/sys/kernel/hostname || { echo "meshnet: cannot set hostname $2" >&2; exit 125; }; fi',
  'shift 2',
  'exec "$@"',
].join('\n');

/** Exit status of the launcher itself failing (mount, hostname), as opposed to the task. */
export const LAUNCH_FAILED_EXIT = 125;

/** PATH given to tasks that do not set their own. */
export const DEFAULT_TASK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Who a task's process runs as and which capabilities it may hold. */
export interface TaskPrivileges {
  user: ResolvedUser;
  /** The bounding set; a root task holds all of them, a non-root task only `ambient`. */
  bounding: Capability[];
  /** Raised for a non-root task so that, e.g., --user 1000 --cap-add NET_BIND_SERVICE can bind port 80. */
  ambient: Capability[];
}

/** Root, as a task runs without --user. */
export const ROOT_USER: ResolvedUser = { uid: 0, gid: 0, initGroups: true, home: '/root' };

/**
 * The privileges of a task: Docker's capability arithmetic for the bounding set. Capabilities
 * named in --cap-add also become ambient for a non-root user (as Podman does; Docker leaves them
 * unusable there), so that dropping root does not force a setcap on the task's binary.
 */
export function taskPrivileges(spec: TaskSpec, user: ResolvedUser): TaskPrivileges {
  const add = (spec.capAdd ?? []) as CapabilityName[];
  const bounding = effectiveCapabilities(add, (spec.capDrop ?? []) as CapabilityName[]);
  const ambient = user.uid === 0 ? [] : bounding.filter((c) => add.includes(c) || add.includes('ALL'));
  return { user, bounding, ambient };
}

const capList = (caps: Capability[]): string => ['-all', ...caps.map((c) => `+${c.toLowerCase()}`)].join(',');

/**
 * setpriv argv (util-linux) that drops to the task's user and capabilities and sets no_new_privs,
 * so no setuid binary or file capability can give the task more than it starts with.
 */
export function setprivArgv(p: TaskPrivileges): string[] {
  return [
    'setpriv',
    `--reuid=${p.user.uid}`,
    `--regid=${p.user.gid}`,
    p.user.initGroups ? '--init-groups' : '--clear-groups',
    `--inh-caps=${capList(p.ambient)}`,
    ...(p.ambient.length > 0 ? [`--ambient-caps=${capList(p.ambient)}`] : []),
    `--bounding-set=${capList(p.bounding)}`,
    '--no-new-privs',
    '--',
  ];
}

/**
 * argv that starts a task: enter its network namespace, unshare a mount namespace whose
 * propagation is slave (namespace files unmounted on the host vanish inside too, while the
 * resolv.conf bind mount stays private), optionally a UTS namespace, then the init script,
 * which does what needs root and execs setpriv, which execs the task with its privileges.
 * nsenter, unshare and setpriv exec rather than fork, so the spawned pid is the task's process.
 */
export function launchArgv(spec: TaskSpec, resolvConfPath: string, privileges: TaskPrivileges): string[] {
  const unshare = ['unshare', '--mount', '--propagation', 'slave'];
  if (spec.hostname !== undefined) unshare.push('--uts');
  return [
    'nsenter', `--net=${spec.netnsPath}`, '--',
    ...unshare, '--',
    '/bin/sh', '-c', INIT_SCRIPT, 'meshnet-task-init', resolvConfPath, spec.hostname ?? '',
    ...setprivArgv(privileges),
    ...spec.command,
  ];
}

/** The environment a task starts with: a minimal base, its id, then the spec's own variables. */
export function taskEnvironment(spec: TaskSpec, home = ROOT_USER.home): Record<string, string> {
  return {
    PATH: DEFAULT_TASK_PATH,
    HOME: home,
    ...(spec.hostname !== undefined ? { HOSTNAME: spec.hostname } : {}),
    MESHNET_TASK_ID: spec.taskId,
    ...(spec.env ?? {}),
  };
}

/**
 * Starts the task detached in its own session and process group (so it survives the agent and
 * can be signalled as a group), stdout and stderr appended to `logFd`.
 */
export function spawnTask(spec: TaskSpec, resolvConfPath: string, logFd: number, privileges: TaskPrivileges): ChildProcess {
  const argv = launchArgv(spec, resolvConfPath, privileges);
  // A task gets its stdio and nothing else of the agent's: no socket of another namespace, whatever library opened it.
  closeOnExecAll();
  const child = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: taskEnvironment(spec, privileges.user.home),
    cwd: spec.cwd ?? '/',
  });
  child.unref();
  return child;
}

/** Sends `signal` to the task's process group; false when no process of the group is left. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
      // The group leader may have changed group; fall back to the process itself.
      try {
        process.kill(pid, signal);
        return true;
      } catch {
        return false;
      }
    }
    throw err;
  }
}

/** How a task's process ended, for people; null code and signal mean it was not our child. */
export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `was killed by ${signal}`;
  if (code === LAUNCH_FAILED_EXIT) return `exited with code ${code}: meshnet could not prepare the task (resolv.conf or hostname; see its stdout.log)`;
  if (code === 127) return 'exited with code 127: command not found (check the command and PATH)';
  if (code === 126) return 'exited with code 126: command not executable';
  if (code !== null) return `exited with code ${code}`;
  return 'disappeared (not started by this supervisor: exit status unknown)';
}
