import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn } from '../../src/sandbox/exec.js';
import { applyRuleSet, readIptables, type IptablesFlavor } from '../../src/mesh/iptables-apply.js';
import { emptyHostRuleSet, hostRuleSet } from '../../src/mesh/iptables-render.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { MeshLab } from './mesh-lab.js';
import { knownState } from '../../src/mesh/fixtures.test-data.js';

// The same transactions through both iptables backends: whichever one a host uses, applying
// twice writes once and removal leaves nothing.
const lab = new MeshLab('mesh-flavors');
const plan = computeMeshPlan({
  node: knownState().node,
  services: [
    { id: 'web', name: 'web', ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }] },
    { id: 'dns', name: 'dns', ports: [{ published: 53, target: 53, protocol: 'udp', mode: 'ingress', policy: 'cluster' }] },
  ],
  tasks: [],
});
const netns: Record<string, string> = {};

describe.each<IptablesFlavor>(['nft', 'legacy'])('iptables-%s', (flavor) => {
  beforeAll(async () => {
    netns[flavor] = await lab.netns(`host-${flavor}`);
  });

  it('applies, re-applies as a no-op, and removes everything', async () => {
    const ns = netns[flavor]!;
    expect((await applyRuleSet(ns, hostRuleSet(plan.host), { flavor })).changed).toBe(true);
    expect((await applyRuleSet(ns, hostRuleSet(plan.host), { flavor })).changed).toBe(false);
    const listed = await execIn(ns, [`iptables-${flavor}`, '-t', 'nat', '-S', 'DOCKER-INGRESS']);
    expect(listed.stdout).toContain('-A DOCKER-INGRESS -p udp -m udp --dport 53 -j DNAT --to-destination 172.18.0.2:53');
    expect((await applyRuleSet(ns, emptyHostRuleSet(), { flavor })).changed).toBe(true);
    const left = await readIptables(ns, ['nat', 'filter'], { flavor });
    const rules = [...left.values()].flatMap((chains) => [...chains.keys(), ...[...chains.values()].flat()]);
    expect(rules.filter((r) => r.includes('meshnet') || r.includes('DOCKER-INGRESS'))).toEqual([]);
  });
});

afterAll(async () => {
  await lab.destroy();
});
