/**
 * What the mesh's iptables costs an agent pass on a host with many tasks: one host namespace
 * with a published port per service and one task namespace per service, each with its redirect.
 *
 *   cold:       first pass through fresh writers (reads every namespace, writes every one)
 *   idle:       a pass with nothing changed, through the same writers (what the agent does each pass)
 *   idle-read:  the same pass the way the agent did it before the writer cache: a fresh read per apply
 *   one-change: one service's target port changes (its task and nothing else is written)
 *   resync:     the periodic full pass (reads every namespace, writes nothing)
 *
 * Run: npm run build && node dist/bench/mesh/iptables-pass.js [tasks, default 60, at most 100] [idle passes, default 20]
 * Needs root; everything lives in throwaway namespaces.
 */
import { execIn, type ExecResult } from '../../src/sandbox/exec.js';
import { applyHostRules, applyTaskRules } from '../../src/mesh/iptables-apply.js';
import { IptablesWriter, type IptablesRunner } from '../../src/mesh/iptables-writer.js';
import type { MeshInput, ServiceInput } from '../../src/mesh/mesh-input.js';
import type { MeshPlan } from '../../src/mesh/mesh-plan.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { knownState } from '../../src/mesh/fixtures.test-data.js';
import { MeshLab } from '../../test/mesh/mesh-lab.js';

const tasks = Math.min(Math.max(Number(process.argv[2] ?? 60), 1), 100);
const idlePasses = Math.min(Math.max(Number(process.argv[3] ?? 20), 1), 100);
// The old way forks one iptables-save per namespace per pass: a few passes say enough.
const readPasses = Math.min(idlePasses, 5);

let forks = 0;

/** A runner that counts forks, for every writer of the bench. */
function runnerIn(netns: string): IptablesRunner {
  return (argv, input): Promise<ExecResult> => {
    forks++;
    return execIn(netns, argv, { input: input ?? '', allowFailure: true, timeoutMs: 30_000 });
  };
}

function input(targetOf: (i: number) => number): MeshInput {
  const services: ServiceInput[] = [];
  const taskInputs: MeshInput['tasks'] = [];
  for (let i = 0; i < tasks; i++) {
    services.push({ id: `s${i}`, name: `s${i}`, ports: [{ published: 20000 + i, target: targetOf(i), protocol: 'tcp', mode: 'ingress', policy: 'cluster' }] });
    taskInputs.push({ id: `s${i}.1`, serviceId: `s${i}`, nodeId: 'n1', state: 'running', ingressAddress: `10.255.${1 + (i >> 8)}.${(i % 254) + 1}` });
  }
  return {
    node: knownState().node,
    services,
    tasks: taskInputs,
  };
}

interface Writers {
  host: IptablesWriter;
  tasks: IptablesWriter[];
}

async function pass(w: Writers, plan: MeshPlan, resync = false): Promise<{ ms: number; forks: number; changed: number }> {
  const f0 = forks;
  const t0 = performance.now();
  let changed = 0;
  for (let i = 0; i < w.tasks.length; i++) if ((await applyTaskRules(w.tasks[i]!, plan.tasks[i]!, { resync })).changed) changed++;
  if ((await applyHostRules(w.host, plan.host, { resync })).changed) changed++;
  return { ms: performance.now() - t0, forks: forks - f0, changed };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number): number => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const lab = new MeshLab('bench-ipt');
  try {
    const host = await lab.netns('host');
    const taskNs: string[] = [];
    for (let i = 0; i < tasks; i++) taskNs.push(await lab.netns(`t${i}`));
    const writers = (): Writers => ({
      host: new IptablesWriter({ netns: host, run: runnerIn(host) }),
      tasks: taskNs.map((ns) => new IptablesWriter({ netns: ns, run: runnerIn(ns) })),
    });
    const plan = computeMeshPlan(input(() => 80));

    const w = writers();
    const cold = await pass(w, plan);

    const idle: { ms: number; forks: number }[] = [];
    for (let k = 0; k < idlePasses; k++) idle.push(await pass(w, plan));

    // Before the cache: every apply read its namespace first (a fresh writer per call).
    const idleRead: { ms: number; forks: number }[] = [];
    for (let k = 0; k < readPasses; k++) idleRead.push(await pass(writers(), plan));

    const changedPlan = computeMeshPlan(input((i) => (i === 0 ? 81 : 80)));
    const oneChange = await pass(w, changedPlan);
    const resync = await pass(w, changedPlan, true);

    const idleMs = idle.map((x) => x.ms);
    const idleReadMs = idleRead.map((x) => x.ms);
    console.log(`iptables per agent pass, ${tasks} task namespaces + 1 host namespace (${tasks} published ports)`);
    console.log(`cold pass (first apply):   ${cold.ms.toFixed(0)} ms, ${cold.forks} forks, ${cold.changed} namespaces written`);
    console.log(`idle pass, writer cache:   p50 ${pct(idleMs, 50).toFixed(3)} ms, p99 ${pct(idleMs, 99).toFixed(3)} ms, forks ${idle.reduce((a, x) => a + x.forks, 0)} over ${idlePasses} passes`);
    console.log(`idle pass, read each time: p50 ${pct(idleReadMs, 50).toFixed(0)} ms, forks per pass ${idleRead[0]!.forks} (the agent before the cache)`);
    console.log(`one service changed:       ${oneChange.ms.toFixed(1)} ms, ${oneChange.forks} forks, ${oneChange.changed} namespaces written`);
    console.log(`resync pass:               ${resync.ms.toFixed(0)} ms, ${resync.forks} forks, ${resync.changed} namespaces written`);
    console.log(
      JSON.stringify({
        event: 'bench.mesh.iptables_pass',
        tasks,
        coldMs: round(cold.ms),
        coldForks: cold.forks,
        idlePassP50Ms: round(pct(idleMs, 50)),
        idlePassP99Ms: round(pct(idleMs, 99)),
        idleForksPerPass: idle.reduce((a, x) => a + x.forks, 0) / idlePasses,
        readEachTimePassP50Ms: round(pct(idleReadMs, 50)),
        readEachTimeForksPerPass: idleRead[0]!.forks,
        oneChangeMs: round(oneChange.ms),
        oneChangeForks: oneChange.forks,
        resyncMs: round(resync.ms),
        resyncForks: resync.forks,
        resyncChanged: resync.changed,
      }),
    );
  } finally {
    await lab.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
