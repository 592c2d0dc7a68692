import { describe, expect, it } from 'vitest';
import { knownState } from './fixtures.test-data.js';
import { computeMeshPlan } from './published-ports.js';
import { hostModePorts6, hostPlan6, hostRuleSet6 } from './host-ports-v6.js';
import { hostRuleSet } from './iptables-render.js';

const plan = computeMeshPlan(knownState());
const addrs = { gwSubnet6: 'fd6d:6777:6272::/64', sboxGw6: 'fd6d:6777:6272::2', taskGw6: (id: string) => (id === 'metrics.1' ? 'fd6d:6777:6272::3' : undefined) };
const natChain = (set: ReturnType<typeof hostRuleSet>, name: string) => set.chains.find((c) => c.table === 'nat' && c.name === name)?.rules ?? [];
const filterChain = (set: ReturnType<typeof hostRuleSet>) => set.chains.find((c) => c.table === 'filter' && c.name === 'DOCKER-INGRESS')?.rules ?? [];

describe('mode=host ports over v6', () => {
  it('twins only the ports of tasks that have a v6 gwbridge address, same port and target', () => {
    expect(plan.host.hostModePorts.map((p) => p.taskId)).toEqual(['metrics.1']);
    expect(hostModePorts6(plan.host.hostModePorts, addrs.taskGw6)).toEqual([{ ...plan.host.hostModePorts[0]!, taskAddress: 'fd6d:6777:6272::3' }]);
    expect(hostModePorts6(plan.host.hostModePorts, () => undefined)).toEqual([]);
  });

  it('plans nothing while no task has a v6 leg, and keeps ingress ports out unless the ingress is dual stack', () => {
    expect(hostPlan6(plan.host, addrs, { ingress6: true, tasksWithLeg6: 0 })).toBeNull();
    expect(hostPlan6(plan.host, addrs, { ingress6: false, tasksWithLeg6: 1 })!.ingressPorts).toEqual([]);
    const both = hostPlan6(plan.host, addrs, { ingress6: true, tasksWithLeg6: 1 })!;
    expect(both.ingressPorts).toEqual(plan.host.ingressPorts);
    expect(both.sboxAddress).toBe('fd6d:6777:6272::2');
    expect(both.gwbridge).toEqual({ name: 'meshnet_gwbr', subnet: 'fd6d:6777:6272::/64' });
  });

  it('DNATs [host]:P to [task v6 leg]:TARGET in MESHNET-HOSTPORT and accepts only that DNATed flow and its replies', () => {
    const set = hostRuleSet6(hostPlan6(plan.host, addrs, { ingress6: false, tasksWithLeg6: 1 })!);
    expect(natChain(set, 'MESHNET-HOSTPORT')).toEqual(['-p tcp -m tcp --dport 9100 -j DNAT --to-destination [fd6d:6777:6272::3]:9100', '-j RETURN']);
    expect(natChain(set, 'DOCKER-INGRESS')).toEqual([]);
    expect(set.builtins.map((b) => `${b.table} ${b.chain}`)).toEqual(['nat PREROUTING', 'nat OUTPUT', 'filter FORWARD', 'nat POSTROUTING', 'nat POSTROUTING']);
    const filter = filterChain(set);
    expect(filter.slice(0, 2)).toEqual([
      '-d fd6d:6777:6272::3/128 -o meshnet_gwbr -p tcp -m tcp --dport 9100 -m conntrack --ctstate DNAT -j ACCEPT',
      '-s fd6d:6777:6272::3/128 -i meshnet_gwbr -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -m tcp --sport 9100 -j ACCEPT',
    ]);
  });

  it('isolates the v6 bridge as the v4 one is: bridge-subnet sources only, no leg to leg, nothing in but replies and DNATs', () => {
    const filter = filterChain(hostRuleSet6(hostPlan6(plan.host, addrs, { ingress6: true, tasksWithLeg6: 1 })!));
    expect(filter.slice(-5)).toEqual([
      '-o meshnet_gwbr -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT',
      '! -s fd6d:6777:6272::/64 -i meshnet_gwbr -j DROP',
      '-i meshnet_gwbr -o meshnet_gwbr -j DROP',
      '-o meshnet_gwbr -j DROP',
      '-j RETURN',
    ]);
    // The ingress ports' ACCEPTs stay ahead of the drops.
    expect(filter.findIndex((r) => r.includes('--dport 8000'))).toBeLessThan(filter.indexOf('-o meshnet_gwbr -j DROP'));
  });

  it('a node whose only v6 legs hold no port yet still gets the isolation chain and its FORWARD jump', () => {
    const set = hostRuleSet6({ ...hostPlan6(plan.host, addrs, { ingress6: false, tasksWithLeg6: 1 })!, hostModePorts: [] });
    expect(filterChain(set)).toHaveLength(5);
    expect(set.builtins).toContainEqual({ table: 'filter', chain: 'FORWARD', rule: '-m comment --comment meshnet -j DOCKER-INGRESS' });
  });
});
