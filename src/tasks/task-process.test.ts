import { describe, expect, it } from 'vitest';
import { DEFAULT_TASK_PATH, describeExit, LAUNCH_FAILED_EXIT, launchArgv, taskEnvironment } from './task-process.js';
import type { TaskSpec } from './task-spec.js';

const spec: TaskSpec = {
  taskId: 'web.1',
  netnsPath: '/run/meshnet/netns/web.1',
  command: ['sh', '-c', 'echo "$1"; rm -rf /nope', 'x; reboot'],
  resolvConf: 'nameserver 127.0.0.11\n',
};

describe('launchArgv', () => {
  it('enters the namespace, unshares a slave mount namespace and passes the command verbatim after the init script', () => {
    const argv = launchArgv(spec, '/run/meshnet/tasks/web.1/resolv.conf');
    expect(argv.slice(0, 8)).toEqual(['nsenter', '--net=/run/meshnet/netns/web.1', '--', 'unshare', '--mount', '--propagation', 'slave', '--']);
    expect(argv.slice(8, 10)).toEqual(['/bin/sh', '-c']);
    expect(argv.slice(12, 14)).toEqual(['/run/meshnet/tasks/web.1/resolv.conf', '']);
    expect(argv.slice(14)).toEqual(spec.command);
    expect(argv).not.toContain('--uts');
  });

  it('adds a UTS namespace and passes the hostname as data when one is wanted', () => {
    const argv = launchArgv({ ...spec, hostname: 'web-1' }, '/r');
    expect(argv.slice(3, 9)).toEqual(['unshare', '--mount', '--propagation', 'slave', '--uts', '--']);
    expect(argv.slice(13, 15)).toEqual(['/r', 'web-1']);
    expect(argv.slice(15)).toEqual(spec.command);
  });

  it('never splices task data into the script text', () => {
    const script = launchArgv({ ...spec, hostname: 'evil' }, '/r/$(reboot)')[11]!;
    expect(script).not.toContain('evil');
    expect(script).not.toContain('reboot');
    expect(script).toContain('exec "$@"');
  });
});

describe('taskEnvironment', () => {
  it('starts minimal, names the task and lets the spec add or override', () => {
    expect(taskEnvironment(spec)).toEqual({ PATH: DEFAULT_TASK_PATH, HOME: '/root', MESHNET_TASK_ID: 'web.1' });
    const env = taskEnvironment({ ...spec, hostname: 'h', env: { PATH: '/bin', MESHNET_NODE: 'host-a' } });
    expect(env).toEqual({ PATH: '/bin', HOME: '/root', HOSTNAME: 'h', MESHNET_TASK_ID: 'web.1', MESHNET_NODE: 'host-a' });
  });
});

describe('describeExit', () => {
  it('tells signals, launcher failures, missing commands and unknown exits apart', () => {
    expect(describeExit(null, 'SIGKILL')).toBe('was killed by SIGKILL');
    expect(describeExit(LAUNCH_FAILED_EXIT, null)).toMatch(/could not prepare the task/);
    expect(describeExit(127, null)).toMatch(/command not found/);
    expect(describeExit(3, null)).toBe('exited with code 3');
    expect(describeExit(null, null)).toMatch(/exit status unknown/);
  });
});
