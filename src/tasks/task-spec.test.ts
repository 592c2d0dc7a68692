import { createHash } from 'node:crypto';
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
    [{ user: 'root;reboot' }, /user: UID, NAME/],
    [{ capAdd: ['NET_BIND'] }, /capabilities: a Linux capability/],
    [{ capDrop: ['ALL', 'nope'] }, /capabilities/],
  ])('rejects %j', (patch, message) => {
    expect(() => parseTaskSpec({ ...spec, ...patch })).toThrow(InvalidTaskSpecError);
    expect(() => parseTaskSpec({ ...spec, ...patch })).toThrow(message);
  });

  it('names the task in the error', () => {
    expect(() => parseTaskSpec({ ...spec, command: [] })).toThrow(/web\.2\.k3j4/);
  });

  it('normalizes capability names to Docker\'s canonical form', () => {
    expect(parseTaskSpec({ ...spec, user: 'nobody:nogroup', capAdd: ['cap_net_admin'], capDrop: ['all'] })).toMatchObject({ user: 'nobody:nogroup', capAdd: ['NET_ADMIN'], capDrop: ['ALL'] });
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
    expect(specFingerprint({ ...spec, user: 'nobody' })).not.toBe(base);
    expect(specFingerprint({ ...spec, capDrop: ['NET_RAW'] })).not.toBe(base);
    expect(specFingerprint({ ...spec, capAdd: ['NET_ADMIN', 'KILL'] })).toBe(specFingerprint({ ...spec, capAdd: ['KILL', 'NET_ADMIN'] }));
  });

  it('stays as it was for a spec without user or capabilities, so an upgrade restarts nothing', () => {
    expect(specFingerprint({ ...spec, capAdd: [], capDrop: [] })).toBe(specFingerprint(spec));
    // The digest meta.json files written before --user existed hold: it must not change.
    const before = JSON.stringify([spec.netnsPath, spec.command, Object.entries(spec.env!).sort(), spec.hostname, '/']);
    expect(specFingerprint(spec)).toBe(createHash('sha256').update(before).digest('hex').slice(0, 32));
  });
});
