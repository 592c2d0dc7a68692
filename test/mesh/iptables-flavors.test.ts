import { afterAll, describe, expect, it } from 'vitest';
import { execIn, processesSpawned } from '../../src/sandbox/exec.js';
import { applyHostRules, applyTaskRules } from '../../src/mesh/iptables-apply.js';
import { IptablesWriter, type IptablesFlavor, type IptablesRunner } from '../../src/mesh/iptables-writer.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { markRulesFromState, markRuleSet, type MarkRule } from '../../src/vip/ipvs/mark-rules.js';
import { knownState } from '../../src/mesh/fixtures.test-data.js';
import { TASK_COMMENT } from '../../src/mesh/iptables-render.js';
import { nftGeneration, NftGenerations } from '../../src/sandbox/nft-generation.js';
import { MeshLab } from './mesh-lab.js';

// The same writer through both iptables backends: whichever one a host uses, an unchanged set
// forks nothing, a resync reads and repairs drift, and removal leaves nothing of ours.
const lab = new MeshLab('mesh-flavors');
const plan = computeMeshPlan({
  node: knownState().node,
  services: [
    { id: 'web', name: 'web', ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }] },
    { id: 'dns', name: 'dns', ports: [{ published: 53, target: 53, protocol: 'udp', mode: 'ingress', policy: 'cluster' }] },
  ],
  tasks: [{ id: 'web.1', serviceId: 'web', nodeId: 'n1', state: 'running', ingressAddress: '10.255.0.5' }],
});
const marks: MarkRule[] = [
  { id: 'ingress-tcp-8000', mark: 8256, protocol: 'tcp', port: 8000, address: '172.18.0.2' },
  { id: 'api-tcp0', mark: 0x40000001, protocol: 'tcp', port: 0, address: '10.0.7.2' },
];

/** A writer on a real namespace that records the tools it forks (with `generations`, it follows the namespace's nf_tables generation). */
function countingWriter(netns: string, flavor: IptablesFlavor, generations?: NftGenerations): { writer: IptablesWriter; forks: string[] } {
  const forks: string[] = [];
  const run: IptablesRunner = (argv, input) => {
    forks.push(argv[0]!);
    return execIn(netns, argv, { input: input ?? '', allowFailure: true, timeoutMs: 30_000 });
  };
  return { writer: new IptablesWriter({ netns, flavor, run, ...(generations ? { generations } : {}) }), forks };
}

async function ours(netns: string, flavor: IptablesFlavor): Promise<string[]> {
  const out: string[] = [];
  for (const table of ['nat', 'filter', 'mangle']) {
    const { stdout } = await execIn(netns, [`iptables-${flavor}-save`, '-t', table]);
    out.push(...stdout.split('\n').filter((l) => /meshnet|DOCKER-INGRESS|MESHNET/.test(l)));
  }
  return out;
}

describe.each<IptablesFlavor>(['nft', 'legacy'])('iptables-%s', (flavor) => {
  it('host rules: apply, no fork for the same set, resync repairs drift, removal leaves nothing', async () => {
    const ns = await lab.netns(`host-${flavor}`);
    const { writer, forks } = countingWriter(ns, flavor);
    expect((await applyHostRules(writer, plan.host)).changed).toBe(true);
    const listed = await execIn(ns, [`iptables-${flavor}`, '-t', 'nat', '-S', 'DOCKER-INGRESS']);
    expect(listed.stdout).toContain('-A DOCKER-INGRESS -p udp -m udp --dport 53 -j DNAT --to-destination 172.18.0.2:53');

    const before = forks.length;
    expect((await applyHostRules(writer, structuredClone(plan.host))).changed).toBe(false);
    expect(forks.length).toBe(before);
    // What iptables-save prints compares equal to what was written: a resync reads and writes nothing.
    expect(await applyHostRules(writer, plan.host, { resync: true })).toMatchObject({ changed: false, readKernel: true });
    expect(forks.slice(before)).toEqual([`iptables-${flavor}-save`, `iptables-${flavor}-save`]);

    await execIn(ns, [`iptables-${flavor}`, '-t', 'nat', '-F', 'DOCKER-INGRESS']);
    expect((await applyHostRules(writer, plan.host)).changed).toBe(false);
    expect((await applyHostRules(writer, plan.host, { resync: true })).changed).toBe(true);
    expect((await execIn(ns, [`iptables-${flavor}`, '-t', 'nat', '-S', 'DOCKER-INGRESS'])).stdout).toContain('--dport 8000 -j DNAT');

    expect((await applyHostRules(writer, null)).changed).toBe(true);
    expect(await ours(ns, flavor)).toEqual([]);
  });

  it('task redirects and IPVS mark rules share one writer in a task namespace without touching each other', async () => {
    const ns = await lab.netns(`task-${flavor}`);
    const { writer, forks } = countingWriter(ns, flavor);
    expect((await applyTaskRules(writer, plan.tasks[0]!)).changed).toBe(true);
    expect((await writer.apply(markRuleSet(marks))).changed).toBe(true);
    expect(markRulesFromState(await writer.read(['mangle']))).toEqual(marks);

    const before = forks.length;
    expect((await applyTaskRules(writer, plan.tasks[0]!)).changed).toBe(false);
    expect((await writer.apply(markRuleSet(marks))).changed).toBe(false);
    expect(forks.length).toBe(before);
    expect((await writer.apply(markRuleSet(marks), { resync: true })).changed).toBe(false);
    expect((await applyTaskRules(writer, plan.tasks[0]!, { resync: true })).changed).toBe(false);

    expect((await writer.apply(markRuleSet([]))).changed).toBe(true);
    const nat = await execIn(ns, [`iptables-${flavor}`, '-t', 'nat', '-S']);
    expect(nat.stdout).toContain('-A MESHNET-INGRESS -d 10.255.0.5/32 -p tcp -m tcp --dport 8000 -j REDIRECT --to-ports 80');
    expect((await applyTaskRules(writer, null)).changed).toBe(true);
    expect(await ours(ns, flavor)).toEqual([]);
  });
});

describe('iptables-nft with the namespace\'s nf_tables generation', () => {
  it('moves on every commit, from nft or iptables-nft, and a resync forks only when it moved', async () => {
    const ns = await lab.netns('host-generation');
    const { writer, forks } = countingWriter(ns, 'nft', NftGenerations.of(ns));
    const g0 = nftGeneration(ns);
    expect(g0).not.toBeNull();
    expect((await applyHostRules(writer, plan.host)).changed).toBe(true);
    expect(nftGeneration(ns)).toBeGreaterThan(g0!);

    // Nothing committed since its own write: the resync trusts what it wrote and forks nothing.
    let before = forks.length;
    expect(await applyHostRules(writer, plan.host, { resync: true })).toMatchObject({ changed: false, readKernel: false });
    expect(forks.length).toBe(before);

    // A hand-made flush commits: the generation moves, the resync reads and repairs.
    const g1 = nftGeneration(ns)!;
    await execIn(ns, ['iptables-nft', '-t', 'nat', '-F', 'DOCKER-INGRESS']);
    expect(nftGeneration(ns)).toBe(g1 + 1);
    expect(await applyHostRules(writer, plan.host, { resync: true })).toMatchObject({ changed: true, readKernel: true });
    expect((await execIn(ns, ['iptables-nft', '-t', 'nat', '-S', 'DOCKER-INGRESS'])).stdout).toContain('--dport 8000 -j DNAT');

    // Another owner's nft commit (a load-balancing table) moves it too: one read finds our rules intact.
    await execIn(ns, ['nft', 'add table ip meshnet-other']);
    before = forks.length;
    expect(await applyHostRules(writer, plan.host, { resync: true })).toMatchObject({ changed: false, readKernel: true });
    expect(forks.slice(before)).toEqual(['iptables-nft-save', 'iptables-nft-save']);
    before = forks.length;
    expect(await applyHostRules(writer, plan.host, { resync: true })).toMatchObject({ changed: false, readKernel: false });
    expect(forks.length).toBe(before);
    expect((await applyHostRules(writer, null)).changed).toBe(true);
  });

  it('a namespace re-made at the same path is read afresh, even where its generation meets the old one', async () => {
    const ns = await lab.netns('remade');
    const { writer, forks } = countingWriter(ns, 'nft', NftGenerations.of(ns));
    await applyHostRules(writer, plan.host);
    const known = nftGeneration(ns)!;
    lab.dir.delete('remade');
    lab.dir.create('remade');
    // The new namespace reaches the old one's generation with commits of its own, none of them ours.
    while (nftGeneration(ns)! < known) await execIn(ns, ['nft', `add table ip filler${nftGeneration(ns)}`]);
    expect(nftGeneration(ns)).toBe(known);
    const before = forks.length;
    expect(await applyHostRules(writer, plan.host, { resync: true })).toMatchObject({ changed: true, readKernel: true });
    expect(forks.slice(before)).toEqual(['iptables-nft-save', 'iptables-nft-save', 'iptables-nft-restore']);
    expect((await execIn(ns, ['iptables-nft', '-t', 'nat', '-S', 'DOCKER-INGRESS'])).stdout).toContain('--dport 8000 -j DNAT');
  });

  it('a second owner\'s first apply at the generation of the last read forks no iptables-save', async () => {
    const ns = await lab.netns('two-owners');
    // Rules an earlier agent left: both owners find theirs in place (an agent restart adopting a task).
    await applyTaskRules(new IptablesWriter({ netns: ns, flavor: 'nft' }), plan.tasks[0]!);
    await new IptablesWriter({ netns: ns, flavor: 'nft' }).apply(markRuleSet(marks));
    const { writer, forks } = countingWriter(ns, 'nft', NftGenerations.of(ns));
    expect((await applyTaskRules(writer, plan.tasks[0]!)).changed).toBe(false);
    expect(forks).toEqual(['iptables-nft-save']);
    // The mark rules live in mangle, which was not read yet: one more read, of that table only.
    expect((await writer.apply(markRuleSet(marks))).changed).toBe(false);
    expect(forks).toEqual(['iptables-nft-save', 'iptables-nft-save']);
    // Anyone's commit makes what was read stale: the next first read forks again.
    await execIn(ns, ['nft', 'add table ip someone-else']);
    const third = { comment: 'meshnet-third', ownedChains: [{ table: 'mangle' as const, name: 'MESHNET-THIRD' }], chains: [{ table: 'mangle' as const, name: 'MESHNET-THIRD', rules: ['-j RETURN'] }], builtins: [] };
    await writer.apply(third);
    expect(forks.slice(2)).toEqual(['iptables-nft-save', 'iptables-nft-restore']);
  });

  it('warmMany reads many namespaces in one process; their first applies then fork nothing, unless one moved since', async () => {
    const names = await Promise.all(['batch-a', 'batch-b', 'batch-c'].map((n) => lab.netns(n)));
    // Rules an earlier agent left in each (the tasks a restarted agent adopts).
    for (const ns of names) await applyTaskRules(new IptablesWriter({ netns: ns, flavor: 'nft' }), plan.tasks[0]!);
    const writers = names.map((ns) => new IptablesWriter({ netns: ns, flavor: 'nft' }));
    let spawned = processesSpawned();
    await IptablesWriter.warmMany(writers, [TASK_COMMENT], 'nat');
    // Two shells, each reading its half of the namespaces.
    expect(processesSpawned() - spawned).toBe(2);
    // The third namespace changes after the read: its read is stale, and only it is read again.
    await execIn(names[2]!, ['nft', 'add table ip someone-else']);
    spawned = processesSpawned();
    expect((await applyTaskRules(writers[0]!, plan.tasks[0]!)).changed).toBe(false);
    expect((await applyTaskRules(writers[1]!, plan.tasks[0]!)).changed).toBe(false);
    expect(processesSpawned() - spawned).toBe(0);
    expect(await applyTaskRules(writers[2]!, plan.tasks[0]!)).toMatchObject({ changed: false, readKernel: true });
    expect(processesSpawned() - spawned).toBe(1);
    // A namespace gone before the batch read it is left to its own apply, which reports the failure.
    const gone = new IptablesWriter({ netns: `${names[0]!}-missing`, flavor: 'nft', generations: NftGenerations.of(names[0]!) });
    await IptablesWriter.warmMany([gone], [TASK_COMMENT], 'nat');
    await expect(applyTaskRules(gone, plan.tasks[0]!)).rejects.toThrow();
  });
});

afterAll(async () => {
  await lab.destroy();
});
