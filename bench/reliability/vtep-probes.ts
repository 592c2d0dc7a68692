/**
 * What the VTEP probes (agent --vtep-probe-interval-ms) buy and cost, on two lab hosts joined by a
 * real VXLAN overlay: how long after a peer's underlay link goes down the prober judges it
 * unreachable and how long after it comes back it is reachable again (ROUNDS times), and the CPU the
 * prober adds to its process with 1 and with 100 peers (windows with and without it, alternated).
 * Run: npm run build && node dist/bench/reliability/vtep-probes.js   (INTERVAL_MS=400 ROUNDS=3 WINDOW_MS=5000)
 * Prints the figures and ends with one JSON line naming them.
 */
import { execFileSync } from 'node:child_process';
import { Lab } from '../../src/lab/lab.js';
import { sandboxPair, setUnderlay } from '../../src/lab/vtep-lab.js';
import { silentLogger } from '../../src/log/logger.js';
import { VtepProber, type VtepProbeTarget } from '../../src/overlay/vtep-prober.js';

const INTERVAL_MS = Number(process.env['INTERVAL_MS'] ?? 400);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const WINDOW_MS = Number(process.env['WINDOW_MS'] ?? 5000);
const MANY = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function waitMs(cond: () => boolean, timeoutMs = 30_000): Promise<number> {
  const started = performance.now();
  while (!cond()) {
    if (performance.now() - started > timeoutMs) throw new Error(`no verdict within ${timeoutMs} ms`);
    await sleep(5);
  }
  return Math.round(performance.now() - started);
}

/** CPU milliseconds this process used over one window. */
async function cpuWindow(): Promise<number> {
  const before = process.cpuUsage();
  await sleep(WINDOW_MS);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/** Percent of a core the prober adds with `target`: median of windows with it minus median without. */
async function cpuCost(target: VtepProbeTarget): Promise<number> {
  const on: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < 3; i++) {
    const p = new VtepProber({ intervalMs: INTERVAL_MS, log: silentLogger(), onChange: () => undefined });
    p.follow(target);
    await sleep(INTERVAL_MS * 2);
    on.push(await cpuWindow());
    p.close();
    off.push(await cpuWindow());
  }
  return Math.round(((median(on) - median(off)) / WINDOW_MS) * 100 * 1000) / 1000;
}

async function main(): Promise<void> {
  await import('node:fs/promises').then((fs) => fs.stat('/'));
  const lab = await Lab.create(2, { tag: 'bench-vtep' });
  try {
    const pair = await sandboxPair(lab, { allowPing: true });
    const one: VtepProbeTarget = { netns: pair.sboxes[0], source: pair.ips[0], peers: [{ node: 'host-b', address: pair.ips[1] }] };

    const prober = new VtepProber({ intervalMs: INTERVAL_MS, log: silentLogger(), onChange: () => undefined });
    prober.follow(one);
    await waitMs(() => prober.status()[0]?.state === 'reachable');
    const down: number[] = [];
    const up: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await setUnderlay(lab, 1, false);
      down.push(await waitMs(() => prober.unreachable().has('host-b')));
      await setUnderlay(lab, 1, true);
      up.push(await waitMs(() => !prober.unreachable().has('host-b')));
      // Start the next round from a random phase of the probe interval.
      await sleep(INTERVAL_MS * (1 + Math.random()));
    }
    prober.close();
    console.log(`probes every ${INTERVAL_MS} ms: unreachable after ${down.join(', ')} ms; reachable again after ${up.join(', ')} ms`);

    // Peers that never answer still cost a send each; static neighbours keep ARP out of the measure.
    const many: VtepProbeTarget = { ...one, peers: [...one.peers, ...Array.from({ length: MANY - 1 }, (_, i) => ({ node: `n${i}`, address: `10.77.0.${100 + i}` }))] };
    for (const p of many.peers.slice(1)) execFileSync('nsenter', [`--net=${pair.sboxes[0]}`, 'ip', 'neigh', 'replace', p.address, 'lladdr', '02:42:0a:4d:00:63', 'dev', 'eth0', 'nud', 'permanent']);
    const cpuOne = await cpuCost(one);
    const cpuMany = await cpuCost(many);
    console.log(`prober CPU: ${cpuOne} % of a core with 1 peer, ${cpuMany} % with ${MANY} peers (${WINDOW_MS} ms windows with and without it)`);
    console.log(
      JSON.stringify({
        bench: 'vtep_probes',
        interval_ms: INTERVAL_MS,
        unreachable_after_ms_median: median(down),
        unreachable_after_ms_max: Math.max(...down),
        reachable_after_ms_median: median(up),
        cpu_core_pct_1_peer: cpuOne,
        [`cpu_core_pct_${MANY}_peers`]: cpuMany,
      }),
    );
  } finally {
    await lab.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
