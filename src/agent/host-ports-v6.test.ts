import { describe, expect, it } from 'vitest';
import { desiredNode, type NodeFacts } from './node-plan.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';
import type { ClusterSnapshot } from '../model/cluster.js';

const facts: NodeFacts = { gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpointsFixture, now: Date.parse('2026-11-25T10:00:01.000Z') };

/** The fixture cluster with web also publishing 9100 in mode=host; `dual` makes appnet dual stack. */
function hostModeSnapshot(dual: boolean): ClusterSnapshot {
  const s = snapshotFixture();
  const web = s.services[0]!;
  web.ports = [...web.ports, { published: 9100, target: 91, protocol: 'tcp', mode: 'host', policy: 'cluster' }];
  if (dual) s.networks = s.networks.map((n) => (n.name === 'appnet' ? { ...n, subnet6: 'fd00:1::/64', gateway6: 'fd00:1::1' } : n));
  return s;
}

const chain = (plan: ReturnType<typeof desiredNode>, table: string, name: string) => plan.hostRules6?.chains.find((c) => c.table === table && c.name === name)?.rules;

describe('the node plan of mode=host ports over v6', () => {
  it('a v4-only cluster with a mode=host port: no v6 leg, no ip6tables rule, no v6 sysctl', () => {
    const plan = desiredNode(hostModeSnapshot(false), settingsFixture('host-a'), facts);
    expect(plan.hostRules?.hostModePorts.map((p) => p.port)).toEqual([9100]);
    expect(plan.hostRules6).toBeUndefined();
    expect(plan.gwLegs.every((l) => l.v6 === undefined)).toBe(true);
    expect(plan.sysctls.some((s) => s.key.startsWith('net.ipv6'))).toBe(false);
  });

  it('a task on a dual-stack network: its leg gets the v6 twin of its gwbridge address, the host DNATs over ip6tables', () => {
    const plan = desiredNode(hostModeSnapshot(true), settingsFixture('host-a'), facts);
    const task = plan.tasks[0]!;
    const leg = plan.gwLegs.find((l) => l.hostIf === task.gw.hostIf)!;
    expect(task.gw.ip).toBe('172.18.0.3');
    expect(leg.v6).toEqual({ ip6: 'fd6d:6777:6272::3', gateway6: 'fd6d:6777:6272::1' });
    // The ingress stays v4 here: only the mode=host port goes v6, and forwarding is asked for once, on the host.
    expect(plan.gwLegs.find((l) => l.hostIf === 'mn-sbox')!.v6).toBeUndefined();
    expect(chain(plan, 'nat', 'MESHNET-HOSTPORT')).toEqual(['-p tcp -m tcp --dport 9100 -j DNAT --to-destination [fd6d:6777:6272::3]:91', '-j RETURN']);
    expect(chain(plan, 'nat', 'DOCKER-INGRESS')).toBeUndefined();
    expect(plan.sysctls.filter((s) => s.key === 'net.ipv6.conf.all.forwarding')).toEqual([{ netns: null, key: 'net.ipv6.conf.all.forwarding', value: '1' }]);
    // The v4 side is what it was.
    expect(desiredNode(hostModeSnapshot(false), settingsFixture('host-a'), facts).hostRules).toEqual(plan.hostRules);
  });

  it('with a dual-stack ingress too, one ip6tables owner holds both the ingress DNAT and the mode=host one', () => {
    const s = hostModeSnapshot(true);
    s.networks = s.networks.map((n) => (n.ingress ? { ...n, subnet6: 'fd00:ff::/64', gateway6: 'fd00:ff::1' } : n));
    const plan = desiredNode(s, settingsFixture('host-a'), facts);
    expect(chain(plan, 'nat', 'DOCKER-INGRESS')?.[0]).toBe('-p tcp -m tcp --dport 8000 -j DNAT --to-destination [fd6d:6777:6272::2]:8000');
    expect(chain(plan, 'nat', 'MESHNET-HOSTPORT')?.[0]).toBe('-p tcp -m tcp --dport 9100 -j DNAT --to-destination [fd6d:6777:6272::3]:91');
    expect(plan.sysctls.filter((x) => x.key === 'net.ipv6.conf.all.forwarding').map((x) => x.netns)).toEqual([null, '/run/host-a/netns/ingress_sbox']);
  });
});
