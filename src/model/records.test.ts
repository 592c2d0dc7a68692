import { describe, expect, test } from 'vitest';
import { RecordInvalidError } from './model-errors.js';
import {
  decodeRecord,
  encodeRecord,
  NetworkRecordSchema,
  NodeRecordSchema,
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
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...goodService, name: '-bad name' }))).toMatch(/name: must be 1-63 letters/);
    expect(issuesOf(() => validate(ServiceRecordSchema, 'service', 'x', { ...goodService, ports: [{ ...goodService.ports[0], published: 70000 }] }))).toMatch(/ports\.0\.published/);
    expect(issuesOf(() => validate(TaskRecordSchema, 'task', 'x', { ...goodTask, state: 'exploded' }))).toMatch(/state/);
    expect(issuesOf(() => validate(TaskRecordSchema, 'task', 'x', { ...goodTask, sandbox: 'relative' }))).toMatch(/sandbox: must be an absolute netns path/);
    expect(issuesOf(() => validate(NetworkRecordSchema, 'network', 'x', { name: 'n', driver: 'bridge', subnet: '10.0.0.1/24', gateway: '10.0.0.1', vni: 0, ingress: false, options: {} }))).toMatch(
      /driver.*subnet: must be an IPv4 CIDR.*vni/,
    );
    expect(issuesOf(() => validate(NodeRecordSchema, 'node', 'x', { id: 'h', name: 'h', underlayIp: 'h', lease: 'abc' }))).toMatch(/underlayIp.*lease/);
  });

  test('stored records keep fields a newer meshnet added, at the top and nested', () => {
    const newer = {
      ...goodService,
      placement: { constraints: ['zone==a'] },
      ports: [{ ...goodService.ports[0], appProtocol: 'http' }],
      lb: { scheduler: 'rr', weights: 'even' },
    };
    const json = encodeRecord(ServiceRecordSchema, 'service', '/k', newer as never);
    expect(decodeRecord(ServiceRecordSchema, 'service', '/k', json)).toEqual(newer);
    const task = { ...goodTask, cpus: 2, addresses: { front: { ...goodTask.addresses.front, ipv6: 'fd00::3' } } };
    expect(decodeRecord(TaskRecordSchema, 'task', '/k', JSON.stringify(task))).toEqual(task);
    expect(unknownFields(ServiceRecordSchema, newer)).toEqual({ placement: { constraints: ['zone==a'] } });
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
