import { describe, expect, it } from 'vitest';
import { appIdentity, parseAppArgs, plainAddress, replyLine } from './app-identity.js';

describe('demo app helpers', () => {
  it('name the task and node from the environment, preferring the task name', () => {
    expect(appIdentity({ MESHNET_TASK_ID: 'abc123', MESHNET_TASK_NAME: 'web.2', MESHNET_NODE: 'host-b' })).toEqual({ task: 'web.2', node: 'host-b' });
    expect(appIdentity({ MESHNET_TASK_ID: 'abc123', MESHNET_NODE: 'host-b' }).task).toBe('abc123');
  });

  it('write the reply line the demo shows', () => {
    expect(replyLine({ task: 'web.2', node: 'host-b' }, plainAddress('::ffff:10.255.0.2'))).toBe('web.2 on host-b (client 10.255.0.2)');
    expect(plainAddress('fe80::1')).toBe('fe80::1');
    expect(plainAddress(undefined)).toBe('unknown');
  });

  it('parse --port and --host and reject the rest', () => {
    expect(parseAppArgs([], 80)).toEqual({ port: 80, host: '0.0.0.0' });
    expect(parseAppArgs(['--port', '8080', '--host', '127.0.0.1'], 80)).toEqual({ port: 8080, host: '127.0.0.1' });
    expect(() => parseAppArgs(['--port', '70000'], 80)).toThrow(/1-65535/);
    expect(() => parseAppArgs(['--port'], 80)).toThrow(/usage/);
    expect(() => parseAppArgs(['--verbose'], 80)).toThrow(/unknown argument/);
  });
});
