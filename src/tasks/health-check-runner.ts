import { spawn } from 'node:child_process';
import { closeOnExecAll } from '../runtime/process-fds.js';
import type { Healthcheck, HealthResult } from './health-check.js';
import { setprivArgv, taskEnvironment, type TaskPrivileges } from './task-process.js';
import type { TaskSpec } from './task-spec.js';

// Output read from a check before the rest is drained unread: the head is all that is kept.
const OUTPUT_READ_LIMIT = 4096;

/** The task process whose namespaces a check enters, and what the task runs as. */
export interface CheckTarget {
  pid: number;
  spec: TaskSpec;
  privileges: TaskPrivileges;
}

/**
 * argv of one health check: enter the task process's mount, network (and UTS) namespaces and its
 * working directory, drop to the task's user and capabilities with no_new_privs (the same setpriv
 * as the task), then `sh -c CMD`. The command is one argument, never interpolated.
 */
export function healthCheckArgv(target: CheckTarget, cmd: string): string[] {
  return [
    'nsenter', `--target=${target.pid}`, '--mount', '--net', ...(target.spec.hostname !== undefined ? ['--uts'] : []), '--wd', '--',
    ...setprivArgv(target.privileges),
    '/bin/sh', '-c', cmd,
  ];
}

/**
 * Runs one check in its own process group with the task's environment, and resolves with its
 * result; never rejects. At the timeout the whole group is killed (exit code -1, as Docker reports
 * it); what the check leaves running after it exits is killed too, so a check costs one short-lived
 * group of processes.
 */
export function runHealthCheck(target: CheckTarget, check: Pick<Healthcheck, 'cmd' | 'timeoutMs'>, now: () => number = Date.now): Promise<HealthResult> {
  const start = new Date(now()).toISOString();
  const argv = healthCheckArgv(target, check.cmd);
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    const finish = (exitCode: number, extra?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ exitCode, output: extra ?? output, start, end: new Date(now()).toISOString() });
    };
    // The check runs the task's own code: it inherits nothing of the agent's (see spawnTask).
    closeOnExecAll();
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: taskEnvironment(target.spec, target.privileges.user.home),
    });
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already empty
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, check.timeoutMs);
    timer.unref();
    const read = (chunk: Buffer) => {
      if (output.length < OUTPUT_READ_LIMIT) output += chunk.toString('utf8').slice(0, OUTPUT_READ_LIMIT - output.length);
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('error', (err) => finish(-1, `cannot run the health check: ${err.message} (is util-linux installed?)`));
    child.once('exit', () => killGroup());
    child.once('close', (code, signal) => {
      if (timedOut) finish(-1, `Health check exceeded timeout (${check.timeoutMs}ms)`);
      else finish(code ?? (signal ? 128 : -1));
    });
  });
}
