import { describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../log/logger.js';
import { IptablesCommandError } from './errors.js';
import { fakeIptablesRunner } from './fake-iptables.test-helper.js';
import { knownState } from './fixtures.test-data.js';
import { applyHostRules, applyTaskRules } from './iptables-apply.js';
import { hostRuleSet, taskRuleSet } from './iptables-render.js';
import { IptablesWriter } from './iptables-writer.js';
import { NftGenerations } from '../sandbox/nft-generation.js';
import { computeMeshPlan } from './published-ports.js';

const plan = computeMeshPlan(knownState());
const hostSet = hostRuleSet(plan.host);
const tool = (argv: string[]): string => argv.slice(0, argv[0] === 'conntrack' ? 1 : 3).join(' ');

function setup(flavor: 'auto' | 'nft' | 'legacy' = 'auto', log?: Logger) {
  const fake = fakeIptablesRunner();
  const writer = new IptablesWriter({ netns: '/run/meshnet/netns/fake', run: fake.run, flavor, ...(log ? { log } : {}) });
  const forksDuring = async (fn: () => Promise<unknown>): Promise<string[]> => {
    const before = fake.forks.length;
    await fn();
    return fake.forks.slice(before).map(tool);
  };
  return { fake, writer, forksDuring };
}

describe('IptablesWriter: what it forks', () => {
  it('first apply reads each table once and writes once; the same set again forks nothing', async () => {
    const { writer, forksDuring } = setup();
    expect(await forksDuring(() => writer.apply(hostSet))).toEqual([
      'iptables-save -t filter',
      'iptables-save -t nat',
      'iptables-restore --noflush -w',
    ]);
    const again = await writer.apply(hostSet);
    expect(again).toMatchObject({ changed: false, script: null, readKernel: false });
    expect(await forksDuring(() => writer.apply(structuredClone(hostSet)))).toEqual([]);
  });

  it('a changed set forks exactly one iptables-restore, rendered from what it last applied', async () => {
    const { fake, writer, forksDuring } = setup();
    await writer.apply(hostSet);
    const fewer = hostRuleSet({ ...plan.host, ingressPorts: plan.host.ingressPorts.slice(1) });
    expect(await forksDuring(() => writer.apply(fewer))).toEqual(['iptables-restore --noflush -w']);
    expect(fake.state.get('nat')!.get('DOCKER-INGRESS')).toEqual(fewer.chains.find((c) => c.name === 'DOCKER-INGRESS' && c.table === 'nat')!.rules);
  });

  it('resync re-reads the kernel and writes nothing when it matches', async () => {
    const { writer, forksDuring } = setup();
    await writer.apply(hostSet);
    expect(await forksDuring(() => writer.apply(hostSet, { resync: true }))).toEqual(['iptables-save -t filter', 'iptables-save -t nat']);
    expect((await writer.apply(hostSet, { resync: true })).changed).toBe(false);
  });

  it('a drifted kernel goes unnoticed by a plain apply and is repaired on resync', async () => {
    const { fake, writer, forksDuring } = setup();
    await writer.apply(hostSet);
    // Someone flushes DOCKER-INGRESS and deletes our PREROUTING jump by hand.
    fake.state.get('nat')!.set('DOCKER-INGRESS', []);
    const prerouting = fake.state.get('nat')!.get('PREROUTING')!;
    prerouting.splice(prerouting.findIndex((r) => r.endsWith('-j DOCKER-INGRESS')), 1);
    expect(await forksDuring(() => writer.apply(hostSet))).toEqual([]);
    const repaired = await writer.apply(hostSet, { resync: true });
    expect(repaired).toMatchObject({ changed: true, readKernel: true });
    expect(fake.state.get('nat')!.get('DOCKER-INGRESS')).toEqual(hostSet.chains.find((c) => c.name === 'DOCKER-INGRESS' && c.table === 'nat')!.rules);
    expect(fake.state.get('nat')!.get('PREROUTING')!.filter((r) => r.endsWith('-j DOCKER-INGRESS'))).toHaveLength(1);
  });

  it('a write rendered from memory that the kernel refuses is retried once after reading the kernel, and said so', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    const { fake, writer, forksDuring } = setup('auto', log);
    await writer.apply(hostSet);
    // Our OUTPUT jump vanished behind our back: deleting it by exact text now fails.
    const output = fake.state.get('nat')!.get('OUTPUT')!;
    output.splice(output.findIndex((r) => r.endsWith('-j DOCKER-INGRESS')), 1);
    const none = hostRuleSet({ ...plan.host, ingressPorts: [] });
    expect(await forksDuring(() => writer.apply(none))).toEqual([
      'iptables-restore --noflush -w',
      'iptables-save -t filter',
      'iptables-save -t nat',
      'iptables-restore --noflush -w',
    ]);
    expect(fake.state.get('nat')!.has('DOCKER-INGRESS')).toBe(false);
    expect(await forksDuring(() => writer.apply(none))).toEqual([]);
    expect(lines.map((l) => l.event)).toEqual(['iptables.applied', 'iptables.drift', 'iptables.applied']);
    expect(lines[1]).toMatchObject({ level: 'warn', owner: 'meshnet', netns: '/run/meshnet/netns/fake' });
  });

  it('a failed write is a typed error that names the command, and the next apply reads the kernel again', async () => {
    const { fake, forksDuring } = setup();
    let refuse = true;
    const writer = new IptablesWriter({
      netns: '/run/x',
      flavor: 'legacy',
      run: async (argv, input) =>
        refuse && argv[0]!.endsWith('-restore') ? { stdout: '', stderr: 'iptables-restore: line 3 failed', code: 1 } : fake.run(argv, input),
    });
    const err = await writer.apply(hostSet).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IptablesCommandError);
    expect((err as Error).message).toMatch(/^iptables-legacy-restore --noflush -w 5 \(in \/run\/x\) exited with 1: iptables-restore: line 3 failed; check that iptables/);
    refuse = false;
    expect(await forksDuring(() => writer.apply(hostSet))).toEqual([
      'iptables-legacy-save -t filter',
      'iptables-legacy-save -t nat',
      'iptables-legacy-restore --noflush -w',
    ]);
  });

  it('keeps each owner apart in one namespace: a task owner and a mark owner do not disturb each other', async () => {
    const { fake, writer, forksDuring } = setup();
    const task = taskRuleSet(plan.tasks[0]!);
    const marks = { comment: 'meshnet-ipvs', ownedChains: [{ table: 'mangle' as const, name: 'MESHNET-IPVS-MARK' }], chains: [{ table: 'mangle' as const, name: 'MESHNET-IPVS-MARK', rules: ['-p tcp -j MARK --set-xmark 0x1/0xffffffff'] }], builtins: [{ table: 'mangle' as const, chain: 'PREROUTING' as const, rule: '-m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK' }] };
    await writer.apply(task);
    await writer.apply(marks);
    expect(await forksDuring(() => Promise.all([writer.apply(task), writer.apply(marks)]))).toEqual([]);
    await applyTaskRules(writer, null);
    expect(fake.state.get('nat')!.has('MESHNET-INGRESS')).toBe(false);
    expect(fake.state.get('mangle')!.get('MESHNET-IPVS-MARK')).toEqual(marks.chains[0]!.rules);
  });

  it('runs concurrent applies one after the other: the last set wins', async () => {
    const { fake, writer } = setup();
    const sets = [0, 1, 2].map((n) => hostRuleSet({ ...plan.host, ingressPorts: plan.host.ingressPorts.slice(n) }));
    await Promise.all(sets.map((s) => writer.apply(s)));
    expect(fake.state.get('nat')!.get('DOCKER-INGRESS')).toEqual(sets[2]!.chains.find((c) => c.name === 'DOCKER-INGRESS' && c.table === 'nat')!.rules);
  });
});

describe('IptablesWriter: the nf_tables generation stands in for a resync read', () => {
  /** A fake namespace whose generation moves on every restore, as the kernel's does on every nf_tables commit. */
  function tracked() {
    const fake = fakeIptablesRunner();
    let generation = 7;
    const run = async (argv: string[], input?: string) => {
      const r = await fake.run(argv, input);
      // iptables-nft commits once per table (each COMMIT line).
      if (argv[0]!.endsWith('-restore') && r.code === 0) generation += (input ?? '').match(/^COMMIT$/gm)?.length ?? 0;
      return r;
    };
    const writer = new IptablesWriter({ netns: '/run/meshnet/netns/fake', run, generations: new NftGenerations(() => generation) });
    const forksDuring = async (fn: () => Promise<unknown>): Promise<string[]> => {
      const before = fake.forks.length;
      await fn();
      return fake.forks.slice(before).map(tool);
    };
    /** Someone else commits in the namespace (a rule deleted by hand). */
    const foreign = (change: () => void) => {
      change();
      generation++;
    };
    return { fake, writer, forksDuring, foreign };
  }

  it('a resync at the generation it last wrote forks nothing; one after a foreign commit reads and repairs', async () => {
    const { fake, writer, forksDuring, foreign } = tracked();
    await writer.apply(hostSet);
    expect(await forksDuring(() => writer.apply(hostSet, { resync: true }))).toEqual([]);
    foreign(() => fake.state.get('nat')!.set('DOCKER-INGRESS', []));
    expect(await forksDuring(() => writer.apply(hostSet, { resync: true }))).toEqual(['iptables-save -t filter', 'iptables-save -t nat', 'iptables-restore --noflush -w']);
    expect(fake.state.get('nat')!.get('DOCKER-INGRESS')).toEqual(hostSet.chains.find((c) => c.name === 'DOCKER-INGRESS' && c.table === 'nat')!.rules);
    // Its own repair moved the generation by one: known again.
    expect(await forksDuring(() => writer.apply(hostSet, { resync: true }))).toEqual([]);
  });

  it('its own write from memory keeps the rules known, and keeps the other owners of the namespace known', async () => {
    const { writer, forksDuring } = tracked();
    const task = taskRuleSet(plan.tasks[0]!);
    await writer.apply(hostSet);
    await writer.apply(task);
    const fewer = hostRuleSet({ ...plan.host, ingressPorts: plan.host.ingressPorts.slice(1) });
    expect(await forksDuring(() => writer.apply(fewer))).toEqual(['iptables-restore --noflush -w']);
    expect(await forksDuring(() => Promise.all([writer.apply(fewer, { resync: true }), writer.apply(task, { resync: true })]))).toEqual([]);
  });

  it('commits another of meshnet\'s writers records in the shared tracker keep its rules known; anyone else\'s do not', async () => {
    const { writer, forksDuring, foreign } = tracked();
    await writer.apply(hostSet);
    // The namespace's nftables backend commits twice and records both (as NftBackend does).
    const g = writer.generations.current()!;
    foreign(() => undefined);
    writer.generations.recordOwn(g, g + 1, 1);
    foreign(() => undefined);
    writer.generations.recordOwn(g + 1, g + 2, 1);
    expect(await forksDuring(() => writer.apply(hostSet, { resync: true }))).toEqual([]);
    foreign(() => undefined);
    expect(await forksDuring(() => writer.apply(hostSet, { resync: true }))).toEqual(['iptables-save -t filter', 'iptables-save -t nat']);
  });

  it('a foreign commit between its read and its write leaves the rules unknown: the next resync reads', async () => {
    const fake = fakeIptablesRunner();
    let generation = 1;
    const run = async (argv: string[], input?: string) => {
      const r = await fake.run(argv, input);
      // Its own commits, and another writer's that landed while this restore ran.
      if (argv[0]!.endsWith('-restore')) generation += ((input ?? '').match(/^COMMIT$/gm)?.length ?? 0) + 1;
      return r;
    };
    const writer = new IptablesWriter({ netns: '/run/meshnet/netns/fake', run, generations: new NftGenerations(() => generation) });
    await writer.apply(hostSet);
    const before = fake.forks.length;
    await writer.apply(hostSet, { resync: true });
    expect(fake.forks.slice(before).map(tool)).toEqual(['iptables-save -t filter', 'iptables-save -t nat']);
  });

  it('a light check (verify) reads only after someone else committed, and then repairs', async () => {
    const { fake, writer, forksDuring, foreign } = tracked();
    await writer.apply(hostSet);
    expect(await forksDuring(() => writer.apply(hostSet, { verify: true }))).toEqual([]);
    foreign(() => fake.state.get('nat')!.set('DOCKER-INGRESS', []));
    expect(await forksDuring(() => writer.apply(hostSet, { verify: true }))).toEqual(['iptables-save -t filter', 'iptables-save -t nat', 'iptables-restore --noflush -w']);
    expect(fake.state.get('nat')!.get('DOCKER-INGRESS')).toEqual(hostSet.chains.find((c) => c.name === 'DOCKER-INGRESS' && c.table === 'nat')!.rules);
    expect(await forksDuring(() => writer.apply(hostSet, { verify: true }))).toEqual([]);
  });

  it('warm reads ahead for owners it does not know, and their first apply then forks only its write', async () => {
    const { fake, writer, forksDuring, foreign } = tracked();
    expect(await forksDuring(() => writer.warm([hostSet.comment], ['filter', 'nat']))).toEqual(['iptables-save -t filter', 'iptables-save -t nat']);
    expect(await forksDuring(() => writer.apply(hostSet))).toEqual(['iptables-restore --noflush -w']);
    // A known owner: nothing to read ahead.
    expect(await forksDuring(() => writer.warm([hostSet.comment], ['filter', 'nat']))).toEqual([]);
    // Read ahead, then someone else commits: the read is stale, and a new owner's apply reads again.
    const other = { ...hostSet, comment: 'meshnet-other' };
    await writer.warm([other.comment], ['filter', 'nat']);
    foreign(() => fake.state.get('nat')!.set('DOCKER-INGRESS', []));
    expect((await forksDuring(() => writer.apply(other))).filter((f) => f.startsWith('iptables-save'))).toEqual(['iptables-save -t filter', 'iptables-save -t nat']);
  });

  it('warm reads nothing without a generation (legacy iptables): the read could not be told current', async () => {
    const fake = fakeIptablesRunner();
    const writer = new IptablesWriter({ netns: '/run/meshnet/netns/fake', run: fake.run, generations: NftGenerations.unknown() });
    await writer.warm([hostSet.comment], ['filter', 'nat']);
    expect(fake.forks).toEqual([]);
  });

  it('a light check without a generation trusts what it applied (legacy iptables forks nothing for it)', async () => {
    const fake = fakeIptablesRunner();
    const writer = new IptablesWriter({ netns: '/run/meshnet/netns/fake', run: fake.run, generations: NftGenerations.unknown() });
    await writer.apply(hostSet);
    const before = fake.forks.length;
    expect(await writer.apply(hostSet, { verify: true })).toMatchObject({ changed: false, readKernel: false });
    expect(fake.forks.length).toBe(before);
  });

  it('with no generation to read (legacy iptables, no nf_tables) every resync reads', async () => {
    const fake = fakeIptablesRunner();
    const writer = new IptablesWriter({ netns: '/run/meshnet/netns/fake', run: fake.run, generations: NftGenerations.unknown() });
    await writer.apply(hostSet);
    const before = fake.forks.length;
    await writer.apply(hostSet, { resync: true });
    expect(fake.forks.slice(before).map(tool)).toEqual(['iptables-save -t filter', 'iptables-save -t nat']);
  });
});

describe('applyHostRules', () => {
  it('flushes UDP conntrack only for ports that stopped being published, remembered without a read', async () => {
    const { writer, forksDuring } = setup();
    expect((await applyHostRules(writer, plan.host)).unpublishedUdpPorts).toEqual([]);
    const withoutDns = { ...plan.host, ingressPorts: plan.host.ingressPorts.filter((p) => p.protocol !== 'udp') };
    let result: Awaited<ReturnType<typeof applyHostRules>> | undefined;
    expect(await forksDuring(async () => (result = await applyHostRules(writer, withoutDns)))).toEqual(['iptables-restore --noflush -w', 'conntrack']);
    expect(result!.unpublishedUdpPorts).toEqual([5353]);
    expect(await forksDuring(() => applyHostRules(writer, withoutDns))).toEqual([]);
  });

  it('null removes every rule and chain the mesh put in the host namespace, and leaves the rest', async () => {
    const { fake, writer } = setup();
    fake.state = new Map([['nat', new Map([['POSTROUTING', ['-s 10.99.0.0/16 -m comment --comment someone-else -j MASQUERADE']]])]]);
    await applyHostRules(writer, plan.host);
    const removed = await applyHostRules(writer, null);
    expect(removed.changed).toBe(true);
    const left = [...fake.state.values()].flatMap((chains) => [...chains].flatMap(([name, rules]) => [name, ...rules]));
    expect(left.filter((r) => r.includes('meshnet') || r.includes('DOCKER-INGRESS') || r.includes('MESHNET'))).toEqual([]);
    expect(fake.state.get('nat')!.get('POSTROUTING')).toEqual(['-s 10.99.0.0/16 -m comment --comment someone-else -j MASQUERADE']);
    expect((await applyHostRules(writer, null)).changed).toBe(false);
  });
});

describe('IptablesWriter: the ipv6 family', () => {
  it('runs only the ip6tables tools (and conntrack -f ipv6), with the flavor pinned the same way', async () => {
    for (const [flavor, save, restore] of [['auto', 'ip6tables-save', 'ip6tables-restore'], ['legacy', 'ip6tables-legacy-save', 'ip6tables-legacy-restore']] as const) {
      const fake = fakeIptablesRunner();
      const writer = new IptablesWriter({ netns: '/run/meshnet/netns/fake', run: fake.run, flavor, family: 'ipv6' });
      await writer.apply(hostSet);
      await writer.forgetUdpFlows([5353]);
      expect(fake.forks.map((argv) => argv[0])).toEqual([save, save, restore, 'conntrack']);
      expect(fake.forks.at(-1)).toEqual(['conntrack', '-D', '-f', 'ipv6', '-p', 'udp', '--orig-port-dst', '5353']);
    }
  });

  it('a writer with no family given stays the v4 one', async () => {
    const { fake, writer } = setup();
    expect(writer.family).toBe('ipv4');
    await writer.apply(hostSet);
    expect(fake.forks.some((argv) => argv[0]!.startsWith('ip6tables'))).toBe(false);
  });
});
