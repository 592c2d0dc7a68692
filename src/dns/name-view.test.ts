import { describe, expect, it } from 'vitest';
import { buildNameView, validateNameView } from './name-view.js';
import { decodeLoose, queryWire, sampleView } from './test-fixtures.js';
import { compileAnswerTable } from './answer-table.js';
import { handleQuery } from './query-handler.js';
import { InvalidDnsInputError } from './errors.js';

describe('buildNameView', () => {
  it('keeps only the task’s networks, in its order, with running tasks only', () => {
    const v = sampleView();
    expect(v.networks.map((n) => n.name)).toEqual(['front', 'back']);
    const front = v.networks[0]!;
    expect(front.services.map((s) => s.name)).toEqual(['web']);
    expect(front.services[0]!.taskIps).toEqual(['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    expect(front.tasks.map((t) => t.name)).toEqual(['web.1.aaa', 'web.2.bbb', 'web.3.ccc']);
    const back = v.networks[1]!;
    expect(back.services.map((s) => [s.name, s.endpointMode, s.vip, s.taskIps])).toEqual([
      ['db', 'dnsrr', null, ['10.0.2.10', '10.0.2.11']],
      ['web', 'vip', '10.0.2.2', ['10.0.2.3', '10.0.2.4']],
    ]);
    expect(JSON.stringify(v)).not.toContain('secret');
  });

  it('is deterministic whatever the input order, so views compare as plain data', () => {
    const a = sampleView();
    const b = buildNameView({
      taskNetworks: ['front', 'back'],
      services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }] }],
      tasks: [
        { name: 'b', service: 'web', running: true, ips: [{ network: 'front', ip: '10.0.1.10' }] },
        { name: 'a', service: 'web', running: true, ips: [{ network: 'front', ip: '10.0.1.9' }] },
      ],
    });
    expect(b.networks[0]!.tasks.map((t) => t.name)).toEqual(['a', 'b']);
    expect(b.networks[0]!.services[0]!.taskIps).toEqual(['10.0.1.9', '10.0.1.10']);
    expect(validateNameView(a)).toEqual(a);
  });
});

describe('validateNameView', () => {
  it('rejects bad names and addresses with the path of the field', () => {
    const v = sampleView();
    v.networks[0]!.services[0]!.vip = '10.0.1';
    expect(() => validateNameView(v)).toThrow(/networks\.0\.services\.0\.vip/);
    const w = sampleView();
    w.networks[0]!.tasks[0]!.name = 'bad name';
    expect(() => validateNameView(w)).toThrow(InvalidDnsInputError);
    expect(() => validateNameView({ networks: [{ name: 'a'.repeat(64), services: [], tasks: [] }] })).toThrow(/not a valid DNS name/);
  });
});

describe('network aliases', () => {
  // api on front (alias api-v2 there) and back (no alias); cache in dnsrr mode with alias kv on front.
  const input = (taskNetworks: string[]) =>
    buildNameView({
      taskNetworks,
      services: [
        {
          name: 'api',
          endpointMode: 'vip',
          attachments: [
            { network: 'front', vip: '10.0.1.2', aliases: ['api-v2', 'api.internal'] },
            { network: 'back', vip: '10.0.2.2', aliases: [] },
          ],
        },
        { name: 'cache', endpointMode: 'dnsrr', attachments: [{ network: 'front', aliases: ['kv'] }] },
      ],
      tasks: [
        { name: 'api.1.a', service: 'api', running: true, ips: [{ network: 'front', ip: '10.0.1.3' }, { network: 'back', ip: '10.0.2.3' }] },
        { name: 'api.2.b', service: 'api', running: true, ips: [{ network: 'front', ip: '10.0.1.4' }, { network: 'back', ip: '10.0.2.4' }] },
        { name: 'cache.1.c', service: 'cache', running: true, ips: [{ network: 'front', ip: '10.0.1.9' }] },
      ],
    });
  const ask = (taskNetworks: string[], name: string, type: 'A' | 'PTR' = 'A') => {
    const table = compileAnswerTable(validateNameView(input(taskNetworks)), { forwarding: false });
    const p = decodeLoose((handleQuery(table, queryWire(name, type), 'udp') as { wire: Buffer }).wire);
    return { rcode: p.rcode, data: p.answers.map((a) => String(a.data)).sort() };
  };

  it('are answered on their network: the VIP (vip mode), the task IPs (dnsrr), and tasks.<alias>', () => {
    expect(ask(['front'], 'api-v2')).toEqual({ rcode: 'NOERROR', data: ['10.0.1.2'] });
    expect(ask(['front'], 'api.internal')).toEqual({ rcode: 'NOERROR', data: ['10.0.1.2'] });
    expect(ask(['front'], 'api-v2.front')).toEqual({ rcode: 'NOERROR', data: ['10.0.1.2'] });
    expect(ask(['front'], 'tasks.api-v2')).toEqual({ rcode: 'NOERROR', data: ['10.0.1.3', '10.0.1.4'] });
    expect(ask(['front'], 'kv')).toEqual({ rcode: 'NOERROR', data: ['10.0.1.9'] });
    expect(ask(['front'], 'tasks.kv')).toEqual({ rcode: 'NOERROR', data: ['10.0.1.9'] });
  });

  it('are not answered on the service’s other networks, nor on networks it is not on', () => {
    expect(ask(['back'], 'api')).toEqual({ rcode: 'NOERROR', data: ['10.0.2.2'] });
    expect(ask(['back'], 'api-v2').rcode).toBe('NXDOMAIN');
    expect(ask(['back'], 'tasks.api-v2').rcode).toBe('NXDOMAIN');
    expect(ask(['back'], 'api-v2.front').rcode).toBe('NXDOMAIN');
    expect(ask(['back'], 'kv').rcode).toBe('NXDOMAIN');
    // A task on both sees the alias through front only.
    expect(ask(['back', 'front'], 'api-v2')).toEqual({ rcode: 'NOERROR', data: ['10.0.1.2'] });
  });

  it('leave PTR naming the service', () => {
    expect(ask(['front'], '2.1.0.10.in-addr.arpa', 'PTR')).toEqual({ rcode: 'NOERROR', data: ['api.front'] });
  });

  it('are kept per network in the view, with service-wide aliases and without repeats', () => {
    const v = buildNameView({
      taskNetworks: ['front', 'back'],
      services: [{ name: 'web', aliases: ['www'], endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2', aliases: ['www', 'w2'] }, { network: 'back', vip: '10.0.2.2' }] }],
      tasks: [],
    });
    expect(v.networks.map((n) => [n.name, n.services[0]!.aliases])).toEqual([
      ['front', ['www', 'w2']],
      ['back', ['www']],
    ]);
  });
});
