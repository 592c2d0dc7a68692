import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readProcStat } from './proc-stat.js';
import { healthCheckArgv, runHealthCheck, type CheckTarget } from './health-check-runner.js';
import { ROOT_USER, taskPrivileges } from './task-process.js';
import type { TaskSpec } from './task-spec.js';

const spec: TaskSpec = { taskId: 't1', netnsPath: '/run/x', command: ['sleep', '1'], resolvConf: '', env: { GREETING: 'hello' } };
// The check enters this test process's own namespaces: it runs as a task's check would, and changes nothing.
const self: CheckTarget = { pid: process.pid, spec, privileges: taskPrivileges(spec, ROOT_USER) };

describe('healthCheckArgv', () => {
  it('enters the task process\'s mount and network namespaces, drops privileges like the task, then sh -c CMD', () => {
    const argv = healthCheckArgv({ ...self, pid: 4242 }, 'test -f /tmp/ok');
    expect(argv.slice(0, 6)).toEqual(['nsenter', '--target=4242', '--mount', '--net', '--wd', '--']);
    expect(argv[6]).toBe('setpriv');
    expect(argv).toContain('--no-new-privs');
    expect(argv.slice(-3)).toEqual(['/bin/sh', '-c', 'test -f /tmp/ok']);
  });

  it('enters the UTS namespace too when the task has a hostname of its own', () => {
    expect(healthCheckArgv({ ...self, spec: { ...spec, hostname: 'web-1' } }, 'true')).toContain('--uts');
  });
});

/** Pids of live (not zombie) processes with this exact cmdline; the sleeps use durations no one else would. */
function living(cmdline: string): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === cmdline && readProcStat(Number(pid))?.state !== 'Z';
      } catch {
        return false;
      }
    });
}

describe.runIf(process.getuid?.() === 0)('runHealthCheck', () => {
  it('reports the exit code and the output, with the task\'s environment', async () => {
    const r = await runHealthCheck(self, { cmd: 'echo "$GREETING from $MESHNET_TASK_ID"; exit 3', timeoutMs: 10_000 });
    expect(r.exitCode).toBe(3);
    expect(r.output).toBe('hello from t1\n');
    expect(Date.parse(r.end)).toBeGreaterThanOrEqual(Date.parse(r.start));
  });

  it('kills the whole check at the timeout, children included, and reports -1', async () => {
    const r = await runHealthCheck(self, { cmd: 'sleep 3017 & wait', timeoutMs: 300 });
    expect(r.exitCode).toBe(-1);
    expect(r.output).toBe('Health check exceeded timeout (300ms)');
    expect(living('sleep\u00003017\u0000')).toEqual([]);
  });

  it('what a check leaves running after it exits is killed with it', async () => {
    const r = await runHealthCheck(self, { cmd: 'sleep 3019 >/dev/null 2>&1 & exit 0', timeoutMs: 10_000 });
    expect(r.exitCode).toBe(0);
    expect(living('sleep\u00003019\u0000')).toEqual([]);
  });
});
