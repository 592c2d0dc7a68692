import { describe, expect, it } from 'vitest';
import { parseAgentProcess } from './agent-discovery.js';

const nul = (...a: string[]) => `${a.join('\0')}\0`;

describe('agent processes from /proc', () => {
  it('reads a lab agent: node, store, netns dir, and its own namespace as the host', () => {
    const cmd = nul('/usr/bin/node', '/work/dist/src/cli/main.js', '--store', 'sqlite:/run/lab/state.db', 'agent', '--name', 'host-b', '--advertise-addr', '192.0.2.2', '--netns-dir', '/run/lab/host-b/netns');
    expect(parseAgentProcess(42, cmd, nul('PATH=/bin'))).toEqual({ pid: 42, node: 'host-b', store: 'sqlite:/run/lab/state.db', hostNetns: '/proc/42/ns/net', netnsDir: '/run/lab/host-b/netns' });
  });

  it('reads the systemd unit form: store from the environment, defaults, --flag=value, an explicit host namespace', () => {
    const cmd = nul('/usr/bin/node', '/opt/meshnet/dist/src/cli/main.js', 'agent', '--name=n1', '--host-netns', '/run/netns/host');
    expect(parseAgentProcess(7, cmd, nul('MESHNET_STORE=etcd://10.0.0.5:2379', 'X=a=b'))).toEqual({ pid: 7, node: 'n1', store: 'etcd://10.0.0.5:2379', hostNetns: '/run/netns/host', netnsDir: '/run/meshnet/netns' });
  });

  it('ignores other programs and meshnet commands that are not the agent', () => {
    expect(parseAgentProcess(1, nul('/usr/bin/ssh-agent', 'agent', '--name', 'x'), '')).toBeNull();
    expect(parseAgentProcess(1, nul('node', '/x/main.js', 'service', 'ls'), '')).toBeNull();
    expect(parseAgentProcess(1, nul('node', '/x/bin/meshnet', 'agent'), '')).toBeNull();
  });
});
