import { describe, expect, it } from 'vitest';
import { InvalidTaskSpecError } from './errors.js';
import { parseTaskSpec, specFingerprint, type TaskSpec } from './task-spec.js';

const spec: TaskSpec = {
  taskId: 'web.2.k3j4',
  netnsPath: '/run/meshnet/netns/web.2',
  command: ['node', 'echo-http.js', '--port', '80'],
  env: { MESHNET_NODE: 'host-b', B: '2', A: '1' },
  resolvConf: 'nameserver 127.0.0.11\noptions ndots:0\n',
  hostname: 'web-2',
};

describe('parseTaskSpec', () => {
  it('accepts a full spec', () => {
    expect(parseTaskSpec(spec)).toEqual(spec);
  });

  it.each([
    [{ taskId: '../etc' }, /task id/],
    [{ taskId: '.' }, /task id/],
    [{ netnsPath: 'relative/ns' }, /absolute/],
    [{ command: [] }, /at least/],
    [{ command: [''] }, /cannot be empty/],
    [{ command: ['a\0b'] }, /NUL/],
    [{ env: { '1BAD': 'x' } }, /environment variable/],
    [{ hostname: 'not_a_label' }, /hostname/],
    [{ cwd: 'tmp' }, /cwd/],
  ])('rejects %j', (patch, message) => {
    expect(() => parseTaskSpec({ ...spec, ...patch })).toThrow(InvalidTaskSpecError);
    expect(() => parseTaskSpec({ ...spec, ...patch })).toThrow(message);
  });

  it('names the task in the error', () => {
    expect(() => parseTaskSpec({ ...spec, command: [] })).toThrow(/web\.2\.k3j4/);
  });
});

describe('specFingerprint', () => {
  it('ignores env order and resolv.conf, and changes with anything that needs a new process', () => {
    const base = specFingerprint(spec);
    expect(specFingerprint({ ...spec, env: { A: '1', B: '2', MESHNET_NODE: 'host-b' } })).toBe(base);
    expect(specFingerprint({ ...spec, resolvConf: 'nameserver 1.1.1.1\n' })).toBe(base);
    expect(specFingerprint({ ...spec, command: ['node', 'echo-http.js', '--port', '81'] })).not.toBe(base);
    expect(specFingerprint({ ...spec, env: { ...spec.env, C: '3' } })).not.toBe(base);
    expect(specFingerprint({ ...spec, hostname: 'web-3' })).not.toBe(base);
    expect(specFingerprint({ ...spec, netnsPath: '/run/meshnet/netns/other' })).not.toBe(base);
  });
});
