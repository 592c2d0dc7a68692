import { describe, expect, it } from 'vitest';
import { desiredNode, type NodeFacts } from './node-plan.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';
import { ipvsSysctls } from '../vip/ipvs/ipvs-tuning.js';

const facts: NodeFacts = { gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpointsFixture, now: Date.parse('2026-11-25T10:00:01.000Z') };
const IPVS_KEYS = Object.keys(ipvsSysctls());

describe('desiredNode on an IPVS node', () => {
  it('sets the IPVS sysctls in every namespace whose table IPVS holds (the task and the ingress sandbox), nowhere else', () => {
    const plan = desiredNode(snapshotFixture(), { ...settingsFixture('host-a'), lbBackend: 'ipvs' }, facts);
    const ipvs = plan.sysctls.filter((s) => IPVS_KEYS.includes(s.key));
    const namespaces = plan.lbTables.map((l) => l.netns);
    expect(namespaces).toEqual(['/run/host-a/netns/t-task00000001', '/run/host-a/netns/ingress_sbox']);
    expect(ipvs).toEqual(namespaces.flatMap((netns) => Object.entries(ipvsSysctls()).map(([key, value]) => ({ netns, key, value }))));
  });

  it('plans exactly what it plans today with nftables or without the setting (older callers)', () => {
    const without = desiredNode(snapshotFixture(), settingsFixture('host-a'), facts);
    const nft = desiredNode(snapshotFixture(), { ...settingsFixture('host-a'), lbBackend: 'nftables' }, facts);
    expect(without.sysctls.filter((s) => IPVS_KEYS.includes(s.key))).toEqual([]);
    expect(nft.sysctls).toEqual(without.sysctls);
    const ipvs = desiredNode(snapshotFixture(), { ...settingsFixture('host-a'), lbBackend: 'ipvs' }, facts);
    expect(ipvs.sysctls.filter((s) => !IPVS_KEYS.includes(s.key))).toEqual(without.sysctls);
  });
});
