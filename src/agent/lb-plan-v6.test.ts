import { describe, expect, test } from 'vitest';
import type { ServiceRecord, TaskRecord } from '../model/records.js';
import { ipvsStateFromTable, validateLbTable } from '../vip/ipvs/ipvs-plan.js';
import { ipv6Frontends } from './lb-plan-v6.js';

const svc: ServiceRecord = {
  name: 'web',
  networks: ['v6net'],
  vips: { v6net: '10.0.9.2' },
  vips6: { v6net: 'fd00:9::2' },
  endpointMode: 'vip',
  ports: [],
  replicas: 3,
  command: ['/bin/server'],
  lb: { scheduler: 'sh', affinity: { timeoutSeconds: 300 } },
};

const task = (slot: number, ip6?: string): TaskRecord => ({
  id: `task0000000${slot}`,
  service: 'web',
  slot,
  node: 'host-a',
  addresses: { v6net: { ip: `10.0.9.${10 + slot}`, mac: `02:42:0a:00:09:${(10 + slot).toString(16)}`, ...(ip6 ? { ip6 } : {}) } },
  sandbox: `/run/host-a/netns/t-task0000000${slot}`,
  desiredState: 'running',
  state: 'running',
  restarts: 0,
  updatedAt: '2026-11-25T10:00:00.000Z',
});

describe('the v6 VIP frontends of a service', () => {
  const tasks = [task(1, 'fd00:9::b'), task(2, 'fd00:9::c'), task(3, 'fd00:9::d'), task(4)];
  // Task 2 drains (0), task 3 is not listed (null), task 4 has no v6 address.
  const frontends = ipv6Frontends(svc, 'v6net', tasks, [1, 0, null, 1]);

  test('balance every TCP and UDP port of the v6 VIP over the tasks v6 addresses, with the v4 weights, scheduler and affinity', () => {
    expect(frontends.map((f) => [f.frontend, f.scheduler, f.persistenceSeconds, f.backends])).toEqual(
      (['tcp', 'udp'] as const).map((protocol) => [
        { kind: 'vip', address: 'fd00:9::2', protocol, port: 0 },
        'sh',
        300,
        [{ address: 'fd00:9::b', port: 0, weight: 1 }, { address: 'fd00:9::c', port: 0, weight: 0 }],
      ]),
    );
    expect(ipv6Frontends(svc, 'other', tasks, [1, 1, 1, 1])).toEqual([]);
  });

  test('are what IPVS can serve: AF_INET6 fwmark services, sh, persistent per client address, the draining task at weight 0', () => {
    const table = { services: frontends };
    expect(() => validateLbTable(table)).not.toThrow();
    const state = ipvsStateFromTable(table);
    expect(state.services.map((s) => [s.service.key.kind, s.service.key.family, s.service.scheduler, s.service.flags, s.service.timeout, s.service.netmaskPrefix])).toEqual([
      ['fwmark', 'inet6', 'sh', 1, 300, 128],
      ['fwmark', 'inet6', 'sh', 1, 300, 128],
    ]);
    expect(state.services[0]!.dests.map((d) => `${d.address} w${d.weight}`)).toEqual(['fd00:9::b w1', 'fd00:9::c w0']);
  });
});
