import { describe, expect, it } from 'vitest';
import { knownState } from './fixtures.test-data.js';
import { computeMeshPlan } from './published-ports.js';
import { returnRouteCommands } from './return-route.js';

describe('returnRouteCommands', () => {
  it('puts the ingress subnet on-link and the default via the sandbox in the table, then the source rule', () => {
    const api1 = computeMeshPlan(knownState()).tasks.find((t) => t.taskId === 'api.1')!;
    expect(returnRouteCommands(api1.returnRoute!).map((a) => a.join(' '))).toEqual([
      'route replace 10.255.0.0/16 dev eth1 scope link table 2550',
      'route replace default via 10.255.0.2 dev eth1 table 2550',
      'rule add from 10.255.0.9 lookup 2550 pref 2550',
    ]);
  });
});
