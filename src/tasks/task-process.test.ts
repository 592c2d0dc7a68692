import { describe, expect, it } from 'vitest';
import { DEFAULT_TASK_PATH, describeExit, LAUNCH_FAILED_EXIT, launchArgv, ROOT_USER, setprivArgv, taskEnvironment, taskPrivileges } from './task-process.js';
import type { TaskSpec } from './task-spec.js';

const spec: TaskSpec = {
  taskId: 'web.1',
  netnsPath: '/run/meshnet/netns/web.1',
  command: ['sh', '-c', 'echo "$1"; rm -rf /nope', 'x; reboot'],
  resolvConf: 'nameserver 127.0.0.11\n',
};

const root = taskPrivileges(spec, ROOT_USER);
const nobody = { uid: 65534, gid: 65534, initGroups: true, home: '/nonexistent' };

describe('launchArgv', () => {
  it('enters the namespace, unshares a slave mount namespace, drops privileges and passes the command verbatim', () => {
    const argv = launchArgv(spec, '/run/meshnet/tasks/web.1/resolv.conf', root);
    expect(argv.slice(0, 8)).toEqual(['nsenter', '--net=/run/meshnet/netns/web.1', '--', 'unshare', '--mount', '--propagation', 'slave', '--']);
    expect(argv.slice(8, 10)).toEqual(['/bin/sh', '-c']);
    expect(argv.slice(12, 14)).toEqual(['/run/meshnet/tasks/web.1/resolv.conf', '']);
    const setpriv = setprivArgv(root);
    expect(argv.slice(14, 14 + setpriv.length)).toEqual(setpriv);
    expect(argv.slice(14 + setpriv.length)).toEqual(spec.command);
    expect(argv).not.toContain('--uts');
  });

  it('adds a UTS namespace and passes the hostname as data when one is wanted', () => {
    const argv = launchArgv({ ...spec, hostname: 'web-1' }, '/r', root);
    expect(argv.slice(3, 9)).toEqual(['unshare', '--mount', '--propagation', 'slave', '--uts', '--']);
    expect(argv.slice(13, 15)).toEqual(['/r', 'web-1']);
    expect(argv.slice(-spec.command.length)).toEqual(spec.command);
  });

  it('never splices task data into the script text', () => {
    const script = launchArgv({ ...spec, hostname: 'evil' }, '/r/$(reboot)', root)[11]!;
    expect(script).not.toContain('evil');
    expect(script).not.toContain('reboot');
    expect(script).toContain('exec "$@"');
  });
});

describe('taskPrivileges and setprivArgv', () => {
  it('gives a root task Docker\'s default bounding set, no inheritable or ambient capabilities, and no_new_privs', () => {
    expect(setprivArgv(root)).toEqual([
      'setpriv', '--reuid=0', '--regid=0', '--init-groups', '--inh-caps=-all',
      '--bounding-set=-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap',
      '--no-new-privs', '--',
    ]);
  });

  it('drops and adds capabilities; an added one is ambient for a non-root user', () => {
    const p = taskPrivileges({ ...spec, capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'] }, nobody);
    expect(p).toEqual({ user: nobody, bounding: ['NET_BIND_SERVICE'], ambient: ['NET_BIND_SERVICE'] });
    expect(setprivArgv(p)).toEqual([
      'setpriv', '--reuid=65534', '--regid=65534', '--init-groups', '--inh-caps=-all,+net_bind_service',
      '--ambient-caps=-all,+net_bind_service', '--bounding-set=-all,+net_bind_service', '--no-new-privs', '--',
    ]);
    expect(taskPrivileges({ ...spec, capDrop: ['NET_RAW'] }, nobody).ambient).toEqual([]);
  });

  it('clears supplementary groups for a uid without a passwd entry', () => {
    expect(setprivArgv(taskPrivileges(spec, { uid: 4242, gid: 0, initGroups: false, home: '/' }))).toContain('--clear-groups');
  });
});

describe('taskEnvironment', () => {
  it('starts minimal, names the task and lets the spec add or override', () => {
    expect(taskEnvironment(spec)).toEqual({ PATH: DEFAULT_TASK_PATH, HOME: '/root', MESHNET_TASK_ID: 'web.1' });
    const env = taskEnvironment({ ...spec, hostname: 'h', env: { PATH: '/bin', MESHNET_NODE: 'host-a' } });
    expect(env).toEqual({ PATH: '/bin', HOME: '/root', HOSTNAME: 'h', MESHNET_TASK_ID: 'web.1', MESHNET_NODE: 'host-a' });
    expect(taskEnvironment(spec, '/nonexistent').HOME).toBe('/nonexistent');
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
