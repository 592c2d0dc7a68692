import { describe, expect, it } from 'vitest';
import { desiredNode, type NodeFacts } from './node-plan.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';

const facts: NodeFacts = { gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpointsFixture, now: Date.parse('2026-11-25T10:00:01.000Z') };

/** The fixture cluster with its ingress network made dual stack (as ensureIngressDualStack does). */
function dualStackSnapshot() {
  const s = snapshotFixture();
  return { ...s, networks: s.networks.map((n) => (n.ingress ? { ...n, subnet6: 'fd00:ff::/64', gateway6: 'fd00:ff::1' } : n)) };
}

describe('the node plan of v6 published ports', () => {
  it('plans no v6 at all while the ingress network is v4 only', () => {
    const plan = desiredNode(snapshotFixture(), settingsFixture('host-a'), facts);
    expect(plan.hostRules6).toBeUndefined();
    expect(plan.gwLegs.every((l) => l.v6 === undefined)).toBe(true);
    expect(plan.sysctls.some((s) => s.key.startsWith('net.ipv6'))).toBe(false);
    expect(plan.lbTables.flatMap((t) => t.table.services).some((s) => s.id.startsWith('ingress6-'))).toBe(false);
  });

  it('with a dual-stack ingress: the sandbox leg gets v6, the host DNATs over ip6tables, the sandbox balances v6 to the target port', () => {
    const plan = desiredNode(dualStackSnapshot(), settingsFixture('host-a'), facts);
    const leg = plan.gwLegs.find((l) => l.hostIf === 'mn-sbox')!;
    expect(leg.v6).toEqual({ ip6: 'fd6d:6777:6272::2', gateway6: 'fd6d:6777:6272::1' });
    expect(plan.gwLegs.filter((l) => l.v6).length).toBe(1);
    expect(plan.hostRules6?.chains.find((c) => c.name === 'DOCKER-INGRESS' && c.table === 'nat')?.rules[0]).toBe('-p tcp -m tcp --dport 8000 -j DNAT --to-destination [fd6d:6777:6272::2]:8000');
    const sbox = plan.lbTables.find((t) => t.netns.endsWith('/ingress_sbox'))!.table.services;
    const v6 = sbox.find((s) => s.id === 'ingress6-tcp-8000')!;
    expect(v6.sourceNat).toBe('fd00:ff::3');
    expect(v6.backends.length).toBeGreaterThan(0);
    expect(v6.backends.every((b) => b.address.startsWith('fd00:ff::') && b.port === 80)).toBe(true);
    expect(plan.sysctls.filter((s) => s.key === 'net.ipv6.conf.all.forwarding').map((s) => s.netns)).toEqual([null, '/run/host-a/netns/ingress_sbox']);
  });
});
