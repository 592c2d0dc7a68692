/**
 * The smallest RSS a meshnet agent can have on Node: each layer of what the agent cannot do without (the
 * runtime, the store's SQLite, libnftables, rtnetlink, the metrics server and logger, the DNS worker threads),
 * measured in a fresh process with none of meshnet's own code, under the environment the systemd unit gives
 * the agent (MALLOC_ARENA_MAX=2). Put beside thread-cpu's rss_mb, it says how much of the agent's RSS is
 * meshnet's and how much any Node agent pays. Each figure is the median of three processes.
 * Ends with one JSON line: floor_rss_mb_<layer>, floor_file_mb_<layer> (node's own code and libraries).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LAYERS } from './node-floor-layers.js';

const child = fileURLToPath(new URL('./node-floor-layers.js', import.meta.url));
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const summary: Record<string, number> = {};
console.log('RSS of a Node process holding the agent\'s required parts and no meshnet code (MB, median of 3)');
console.log('layer                  rss    anon   file (node\'s code, libraries)');
for (let n = 1; n <= LAYERS.length; n++) {
  const runs: { rssKb: number; anonKb: number; fileKb: number }[] = [];
  for (let r = 0; r < RUNS; r++) {
    const out = spawnSync(process.execPath, ['--expose-gc', child, String(n)], { encoding: 'utf8', env: { ...process.env, MALLOC_ARENA_MAX: '2' } });
    if (out.status !== 0) throw new Error(`layer ${LAYERS[n - 1]} failed (exit ${out.status}): ${out.stderr.trim()}`);
    runs.push(JSON.parse(out.stdout.trim().split('\n').at(-1)!));
  }
  const mb = (kb: number) => Math.round(kb / 102.4) / 10;
  const rss = mb(median(runs.map((x) => x.rssKb)));
  const anon = mb(median(runs.map((x) => x.anonKb)));
  const file = mb(median(runs.map((x) => x.fileKb)));
  const name = LAYERS[n - 1]!;
  console.log(`${(n === 1 ? name : `+ ${name}`).padEnd(20)} ${rss.toFixed(1).padStart(6)} ${anon.toFixed(1).padStart(7)} ${file.toFixed(1).padStart(6)}`);
  const key = name.replace(/ /g, '_');
  summary[`floor_rss_mb_${key}`] = rss;
  summary[`floor_file_mb_${key}`] = file;
}
console.log(JSON.stringify(summary));
