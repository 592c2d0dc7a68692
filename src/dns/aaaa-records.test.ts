import { describe, expect, test } from 'vitest';
import { compileAnswerTable } from './answer-table.js';
import { buildNameView, validateNameView } from './name-view.js';
import { TYPE_A, TYPE_AAAA, TYPE_PTR } from './wire.js';
import { ipv6PtrName } from './aaaa-records.js';

const view = buildNameView({
  taskNetworks: ['six'],
  services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'six', vip: '10.0.9.2', vip6: 'fd00:9::2' }] }],
  tasks: [
    { name: 'web.1', service: 'web', running: true, ips: [{ network: 'six', ip: '10.0.9.3', ip6: 'fd00:9::3' }] },
    { name: 'web.2', service: 'web', running: true, ips: [{ network: 'six', ip: '10.0.9.4', ip6: 'fd00:9::4' }] },
  ],
});

describe('AAAA answers', () => {
  test('a dual-stack view validates and carries the v6 VIP and task addresses', () => {
    expect(validateNameView(view)).toEqual(view);
    expect(view.networks[0]!.services[0]).toMatchObject({ vip6: 'fd00:9::2', taskIps6: ['fd00:9::3', 'fd00:9::4'] });
  });

  test('<svc> answers AAAA with the v6 VIP, tasks.<svc> with the task v6 addresses, PTR for v6', () => {
    const table = compileAnswerTable(view, { forwarding: false });
    const aaaa = (name: string) => table.lookup(name)?.get(TYPE_AAAA)?.answers.map((r) => r.subarray(r.length - 16).toString('hex'));
    expect(aaaa('web')).toEqual(['fd000009000000000000000000000002']);
    expect(aaaa('tasks.web')?.sort()).toEqual(['fd000009000000000000000000000003', 'fd000009000000000000000000000004']);
    expect(aaaa('web.1.six')).toEqual(['fd000009000000000000000000000003']);
    expect(table.lookup('web')?.get(TYPE_A)?.answers).toHaveLength(1);
    expect(table.lookup(ipv6PtrName('fd00:9::2'))?.get(TYPE_PTR)?.answers).toHaveLength(1);
    expect(table.lookup(ipv6PtrName('fd00:9::3'))?.get(TYPE_PTR)?.answers).toHaveLength(1);
  });

  test('a v4-only view has no AAAA record and no v6 field', () => {
    const v4 = buildNameView({
      taskNetworks: ['plain'],
      services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'plain', vip: '10.0.1.2' }] }],
      tasks: [{ name: 'web.1', service: 'web', running: true, ips: [{ network: 'plain', ip: '10.0.1.3' }] }],
    });
    expect(JSON.stringify(v4)).not.toMatch(/ip6|vip6/);
    expect(compileAnswerTable(v4, { forwarding: false }).lookup('web')?.get(TYPE_AAAA)).toBeUndefined();
  });
});
