import { describe, expect, it } from 'vitest';
import type { ServiceRecord } from '../../model/records.js';
import { CliError } from '../cli-context.js';
import { taskRecord } from './task-record.test-data.js';
import { parseLsFilters, renderServiceTable, replicasText, selectServices } from './service-ls.js';

const service = (name: string, over: Partial<ServiceRecord> = {}): ServiceRecord => ({
  name,
  networks: [],
  vips: {},
  endpointMode: 'vip',
  ports: [],
  replicas: 3,
  command: ['srv', '--port', '80'],
  lb: { scheduler: 'rr' },
  ...over,
});
const task = taskRecord;

const services = [service('api'), service('api-v2', { mode: 'global', replicas: 0 }), service('web', { ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }] })];

describe('service ls filters', () => {
  it('name= and id= match a prefix, mode= the mode; values of a key are alternatives, keys all apply', () => {
    const names = (f: string[]) => selectServices(services, parseLsFilters(f)).map((s) => s.name);
    expect(names([])).toEqual(['api', 'api-v2', 'web']);
    expect(names(['name=api'])).toEqual(['api', 'api-v2']);
    expect(names(['name=api-', 'name=we'])).toEqual(['api-v2', 'web']);
    expect(names(['id=w'])).toEqual(['web']);
    expect(names(['mode=global'])).toEqual(['api-v2']);
    expect(names(['mode=replicated', 'name=api'])).toEqual(['api']);
    expect(names(['name=nothing'])).toEqual([]);
  });

  it('refuses unknown keys and bad values with the accepted forms (exit 2)', () => {
    for (const bad of ['label=x', 'mode=sideways', 'name=', 'name']) {
      expect(() => parseLsFilters([bad])).toThrow(CliError);
      expect(() => parseLsFilters([bad])).toThrow(/use name=PREFIX, id=PREFIX or mode=replicated\|global/);
    }
    expect(() => parseLsFilters(['label=x'])).toThrow(/unknown key "label"/);
  });
});

describe('service ls table', () => {
  it('shows MODE and REPLICAS as running/desired; draining, starting and attached tasks are not counted as running', () => {
    const tasks = [
      task('api', 1),
      task('api', 2, { state: 'starting' }),
      task('api', 4, { desiredState: 'shutdown' }),
      task('api', 100001, { external: true }),
      task('api-v2', 1),
      task('api-v2', 2, { state: 'failed' }),
    ];
    expect(replicasText(services[0]!, tasks)).toBe('1/3');
    expect(replicasText(services[1]!, tasks)).toBe('1/2');
    const lines = renderServiceTable(services, tasks).split('\n');
    expect(lines[0]).toMatch(/^NAME\s+MODE\s+REPLICAS\s+PORTS\s+COMMAND$/);
    expect(lines[1]).toMatch(/^api\s+replicated\s+1\/3\s+srv --port 80$/);
    expect(lines[2]).toMatch(/^api-v2\s+global\s+1\/2\s+srv --port 80$/);
    expect(lines[3]).toMatch(/^web\s+replicated\s+0\/3\s+\*:8000->80\/tcp\s+srv --port 80$/);
  });
});
