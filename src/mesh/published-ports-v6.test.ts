import { describe, expect, it } from 'vitest';
import { knownState } from './fixtures.test-data.js';
import { computeMeshPlan } from './published-ports.js';
import { ingressV6Plan, returnRoute6, type IngressV6Addresses } from './published-ports-v6.js';

const addrs: IngressV6Addresses = {
  sboxGw6: 'fd6d:6777:6272::2',
  gwSubnet6: 'fd6d:6777:6272::/64',
  sboxIngress6: 'fd00:ff::2',
  ingressSubnet6: 'fd00:ff::/64',
  // The fixture's tasks on 10.255.0.N get fd00:ff::N; 10.255.0.10 is left without one.
  taskIngress6: (ip4) => (ip4 === '10.255.0.10' ? undefined : `fd00:ff::${ip4.split('.')[3]}`),
};

describe('ingressV6Plan: published ports over v6', () => {
  const input = knownState();
  const plan = computeMeshPlan(input);
  const v6 = ingressV6Plan(plan, input, addrs);
  const byId = new Map(v6.sboxServices.map((s) => [s.id, s]));

  it('twins every sandbox service: v6 frontend on the sandbox gwbridge address, DNAT to the target port', () => {
    expect([...byId.keys()].sort()).toEqual(plan.sbox.virtualServices.map((s) => s.id.replace('ingress-', 'ingress6-')).sort());
    const web = byId.get('ingress6-tcp-8000')!;
    expect(web.frontend).toEqual({ kind: 'fwmark', mark: 8256, protocol: 'tcp', port: 8000, address: 'fd6d:6777:6272::2' });
    expect(web.scheduler).toBe('sh');
    expect(web.sourceNat).toBe('fd00:ff::2');
    // Same weights as v4 (the draining task keeps weight 0), the target port instead of "keep the port".
    expect(web.backends).toEqual([
      { address: 'fd00:ff::5', port: 80, weight: 1 },
      { address: 'fd00:ff::6', port: 80, weight: 1 },
      { address: 'fd00:ff::7', port: 80, weight: 0 },
    ]);
    expect(byId.get('ingress6-udp-5353')!.backends.every((b) => b.port === 53)).toBe(true);
  });

  it('policy=local keeps the client address (no source NAT) and only local tasks; a task without v6 is left out', () => {
    const api = byId.get('ingress6-tcp-9000')!;
    expect(api.sourceNat).toBeUndefined();
    expect(api.backends).toEqual([{ address: 'fd00:ff::9', port: 8080, weight: 1 }]);
    const other = ingressV6Plan(computeMeshPlan({ ...input, node: { ...input.node, nodeId: 'n2' } }), { ...input, node: { ...input.node, nodeId: 'n2' } }, addrs);
    expect(other.sboxServices.find((s) => s.id === 'ingress6-tcp-9000')!.backends).toEqual([]);
  });

  it('the host DNATs the same ports to the sandbox over ip6tables, without mode=host ports', () => {
    const nat = v6.hostRules.chains.find((c) => c.table === 'nat' && c.name === 'DOCKER-INGRESS')!;
    expect(nat.rules).toContain('-p tcp -m tcp --dport 8000 -j DNAT --to-destination [fd6d:6777:6272::2]:8000');
    expect(nat.rules.filter((r) => r.includes('DNAT'))).toHaveLength(plan.host.ingressPorts.length);
    expect(v6.hostRules.chains.some((c) => c.name === 'MESHNET-HOSTPORT')).toBe(false);
    expect(v6.hostRules.builtins.map((b) => b.rule)).toContain('-s fd6d:6777:6272::/64 ! -o meshnet_gwbr -m comment --comment meshnet -j MASQUERADE');
    expect(v6.hostSysctls).toEqual([{ key: 'net.ipv6.conf.all.forwarding', value: '1' }]);
  });

  it('gives a policy=local task a v6 return route through the local sandbox, and none to a task without one', () => {
    const api = plan.tasks.find((t) => t.taskId === 'api.1')!;
    expect(returnRoute6(api.returnRoute, addrs)).toEqual({ ...api.returnRoute, from: 'fd00:ff::9', routes: [{ to: 'fd00:ff::/64' }, { to: 'default', via: 'fd00:ff::2' }] });
    expect(returnRoute6(plan.tasks.find((t) => t.taskId === 'web.1')!.returnRoute, addrs)).toBeNull();
  });
});
