import { describe, expect, test } from 'vitest';
import { RecordInvalidError } from './model-errors.js';
import {
  decodeRecord,
  encodeRecord,
  nameProblem,
  NetworkRecordSchema,
  NetworkSpecSchema,
  NodeRecordSchema,
  NodeSpecSchema,
  ServiceRecordSchema,
  ServiceSpecSchema,
  ServiceUpdateSchema,
  TaskRecordSchema,
  unknownFields,
  validate,
} from './records.js';

const goodService = {
  name: 'web',
  networks: ['front'],
  vips: { front: '10.0.0.2', ingress: '10.255.0.2' },
  endpointMode: 'vip',
  ports: [{ published: 8080, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }],
  replicas: 3,
  command: ['httpd', '-f'],
  lb: { scheduler: 'rr' },
};

const goodTask = {
  id: 'a1b2c3d4e5f6a1b2c3d4e5f6',
  service: 'web',
  slot: 1,
  node: 'host-1',
  addresses: { front: { ip: '10.0.0.3', mac: '02:42:0a:00:00:03' } },
  sandbox: '/run/meshnet/netns/t-a1b2c3d4e5f6',
  desiredState: 'running',
  state: 'new',
  restarts: 0,
  updatedAt: '2026-01-01T00:00:00.000Z',
};

function issuesOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RecordInvalidError);
    return (err as Error).message;
  }
  throw new Error('expected a RecordInvalidError');
}

describe('record schemas', () => {
  test('good records round-trip through encode/decode', () => {
    for (const [schema, value, kind] of [
      [ServiceRecordSchema, goodService, 'service'],
      [TaskRecordSchema, goodTask, 'task'],
      [NodeRecordSchema, { id: 'host-1', name: 'host-1', underlayIp: '192.168.1.10', lease: '42', labels: { zone: 'a' } }, 'node'],
      [NetworkRecordSchema, { name: 'front', driver: 'overlay', subnet: '10.0.0.0/24', gateway: '10.0.0.1', vni: 4096, ingress: false, options: {} }, 'network'],
    ] as const) {
      const json = encodeRecord(schema, kind, '/k', value as never);
      expect(decodeRecord(schema, kind, '/k', json)).toEqual(value);
    }
  });

  test('bad records fail with the field and the reason', () => {
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...goodService, endpointMode: 'round-robin' }))).toMatch(/invalid service x: endpointMode/);
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...goodService, vips: { front: '10.0.0.300' } }))).toMatch(/vips\.front: must be a dotted-quad IPv4 address/);
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...goodService, command: [] }))).toMatch(/command: needs at least the program/);
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...goodService, name: '-bad name' }))).toMatch(/name: must be lowercase letters, digits and "-", 1-63/);
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...goodService, ports: [{ ...goodService.ports[0], published: 70000 }] }))).toMatch(/ports\.0\.published/);
    expect(issuesOf(() => validate(TaskRecordSchema, 'task', 'x', { ...goodTask, state: 'exploded' }))).toMatch(/state/);
    expect(issuesOf(() => validate(TaskRecordSchema, 'task', 'x', { ...goodTask, sandbox: 'relative' }))).toMatch(/sandbox: must be an absolute netns path/);
    expect(issuesOf(() => validate(NetworkRecordSchema, 'network', 'x', { name: 'n', driver: 'bridge', subnet: '10.0.0.1/24', gateway: '10.0.0.1', vni: 0, ingress: false, options: {} }))).toMatch(
      /driver.*subnet: must be an IPv4 CIDR.*vni/,
    );
    expect(issuesOf(() => validate(NodeRecordSchema, 'node', 'x', { id: 'h', name: 'h', underlayIp: 'h', lease: 'abc' }))).toMatch(/underlayIp.*lease/);
  });

  test('a node\'s underlay address is v4 (as older agents wrote it) or v6 (a v6 underlay), nothing else', () => {
    for (const underlayIp of ['192.168.1.10', '2001:db8::11']) {
      expect(validate(NodeRecordSchema, 'node', 'x', { id: 'h', name: 'h', underlayIp, lease: '1' }).underlayIp).toBe(underlayIp);
      expect(validate(NodeSpecSchema, 'node spec', 'x', { name: 'h', underlayIp }).underlayIp).toBe(underlayIp);
    }
    expect(issuesOf(() => validate(NodeRecordSchema, 'node', 'x', { id: 'h', name: 'h', underlayIp: '2001:db8::/64', lease: '1' }))).toMatch(/underlayIp: must be an IPv4 or IPv6 address/);
  });

  test('stored records keep fields a newer meshnet added, at the top and nested', () => {
    const newer = {
      ...goodService,
      // placement became a known field (global mode and constraints); secrets is still one from the future.
      secrets: [{ name: 'db-password' }],
      ports: [{ ...goodService.ports[0], appProtocol: 'http' }],
      lb: { scheduler: 'rr', weights: 'even' },
    };
    const json = encodeRecord(ServiceRecordSchema, 'service', '/k', newer as never);
    expect(decodeRecord(ServiceRecordSchema, 'service', '/k', json)).toEqual(newer);
    const task = { ...goodTask, cpus: 2, addresses: { front: { ...goodTask.addresses.front, ipv6: 'fd00::3' } } };
    expect(decodeRecord(TaskRecordSchema, 'task', '/k', JSON.stringify(task))).toEqual(task);
    expect(unknownFields(ServiceRecordSchema, newer)).toEqual({ secrets: [{ name: 'db-password' }] });
    // A known field with a wrong type is still an error, even next to unknown ones.
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...newer, replicas: 'three' }))).toMatch(/replicas/);
  });

  test('what users submit stays strict: an unknown field is a typo', () => {
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name: 'api', command: ['api'], replicsa: 3 }))).toMatch(/replicsa/);
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name: 'api', command: ['api'], ports: [{ target: 80, mdoe: 'host' }] }))).toMatch(/mdoe/);
    expect(issuesOf(() => validate(ServiceUpdateSchema, 'service update', 'x', { lb: { scheduler: 'rr', afinity: {} } }))).toMatch(/afinity/);
  });

  test('stored garbage is reported with its key', () => {
    expect(issuesOf(() => decodeRecord(TaskRecordSchema, 'task', '/meshnet/tasks/web/1', '{nope'))).toMatch(/invalid task at \/meshnet\/tasks\/web\/1: stored value is not JSON/);
  });

  test('service specs get Docker-like defaults', () => {
    const spec = validate(ServiceSpecSchema, 'service spec', 'x', { name: 'api', command: ['api'], ports: [{ target: 80 }] });
    expect(spec).toMatchObject({ networks: [], endpointMode: 'vip', replicas: 1, lb: { scheduler: 'rr' } });
    expect(spec.ports[0]).toEqual({ target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' });
  });
});

describe('one grammar for names (DNS labels, as Docker)', () => {
  const bad = ['my_app', 'web.v2', 'web-', '-web', 'a..b', 'AppNet', '', 'a'.repeat(64), 'web v2'];

  test.each(bad)('refuses %j as a service, network or node name, stating the rule', (name) => {
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name, command: ['x'] }))).toMatch(/name: must be lowercase letters, digits and "-", 1-63 characters, not starting or ending with "-"/);
    expect(issuesOf(() => validate(NetworkSpecSchema, 'network spec', 'x', { name }))).toMatch(/name: must be lowercase letters, digits and "-", 1-40 characters/);
    expect(issuesOf(() => validate(NodeSpecSchema, 'node spec', 'x', { id: name, name: 'h', underlayIp: '192.0.2.1' }))).toMatch(/id: must be lowercase/);
    for (const kind of ['service', 'network', 'node'] as const) expect(nameProblem(kind, name)).toMatch(/use lowercase letters, digits and "-"/);
  });

  test('accepts labels; networks stop at 40 characters (the overlay namespace name)', () => {
    for (const name of ['web', 'a', 'web-v2', '0day', 'a'.repeat(63)]) expect(nameProblem('service', name)).toBeUndefined();
    expect(nameProblem('network', 'n'.repeat(40))).toBeUndefined();
    expect(nameProblem('network', 'n'.repeat(41))).toMatch(/1-40 characters/);
    expect(issuesOf(() => validate(NetworkSpecSchema, 'network spec', 'x', { name: 'n'.repeat(41) }))).toMatch(/1-40 characters/);
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name: 'web', networks: ['n'.repeat(41)], command: ['x'] }))).toMatch(/networks\.0/);
  });

  test('a stored record with a bad name is invalid, as other invalid records are', () => {
    expect(issuesOf(() => decodeRecord(ServiceRecordSchema, 'service', '/meshnet/services/my_app', JSON.stringify({ ...goodService, name: 'my_app' })))).toMatch(
      /invalid service at \/meshnet\/services\/my_app: name: must be lowercase/,
    );
    expect(issuesOf(() => decodeRecord(NetworkRecordSchema, 'network', '/k', JSON.stringify({ name: 'AppNet', driver: 'overlay', subnet: '10.0.0.0/24', gateway: '10.0.0.1', vni: 4096, ingress: false, options: {} })))).toMatch(/name: must be/);
    expect(issuesOf(() => decodeRecord(TaskRecordSchema, 'task', '/k', JSON.stringify({ ...goodTask, node: 'Host_1' })))).toMatch(/node: must be/);
  });
});

describe('environment and command', () => {
  test.each([
    [{ 'A=B': 'x' }, /env\.A=B.*environment variable names/],
    [{ '1X': 'x' }, /environment variable names/],
    [{ 'A\0B': 'x' }, /environment variable names/],
    [{ OK: 'a\0b' }, /environment values cannot contain NUL/],
  ])('refuses env %j at the edge and in stored records', (env, message) => {
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name: 'web', command: ['x'], env }))).toMatch(message);
    expect(issuesOf(() => validate(ServiceUpdateSchema, 'service update', 'x', { env }))).toMatch(message);
    expect(issuesOf(() => decodeRecord(ServiceRecordSchema, 'service', '/k', JSON.stringify({ ...goodService, env })))).toMatch(message);
  });

  test('refuses NUL in command arguments', () => {
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name: 'web', command: ['a\0b'] }))).toMatch(/NUL/);
  });
});

describe('user and capabilities', () => {
  test('specs take Docker\'s forms and store canonical capability names', () => {
    const spec = validate(ServiceSpecSchema, 'service spec', 'x', { name: 'web', command: ['x'], user: 'www-data:www-data', capAdd: ['cap_net_bind_service'], capDrop: ['all'] });
    expect(spec).toMatchObject({ user: 'www-data:www-data', capAdd: ['NET_BIND_SERVICE'], capDrop: ['ALL'] });
    const record = { ...goodService, user: '1000:1000', capAdd: ['NET_BIND_SERVICE'], capDrop: ['ALL'] };
    expect(decodeRecord(ServiceRecordSchema, 'service', '/k', encodeRecord(ServiceRecordSchema, 'service', '/k', record as never))).toEqual(record);
  });

  test('refuses a malformed user or an unknown capability, stating the rule', () => {
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name: 'web', command: ['x'], user: 'a b' }))).toMatch(/user: user must be UID, NAME, UID:GID or NAME:GROUP/);
    expect(issuesOf(() => validate(ServiceSpecSchema, 'service spec', 'x', { name: 'web', command: ['x'], capAdd: ['NET_BIND'] }))).toMatch(/capAdd\.0: must be a Linux capability/);
    expect(issuesOf(() => decodeRecord(ServiceRecordSchema, 'service', '/k', JSON.stringify({ ...goodService, capDrop: ['net_raw'] })))).toMatch(/capDrop\.0/);
  });
});
