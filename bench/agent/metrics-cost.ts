/**
 * What the agent's observability costs. A pass pays AgentMetrics.passFinished (counters and a reference to
 * the plan) whatever the table size; a scrape of /metrics pays for the backend series, which grow with
 * services x backends. Measured on synthetic LB tables of 100, 1,000 and 10,000 services with 10 backends.
 * Ends with one JSON line: passFinishedUs_<n>, scrapeMs_<n>, scrapeKB_<n>.
 */
import type { AgentViews, PassObservation } from '../../src/agent/agent-observer.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import type { NodePlan } from '../../src/agent/node-plan.js';
import type { PassReport } from '../../src/agent/node-reconciler.js';
import type { ClusterSnapshot } from '../../src/model/cluster.js';
import { emptyDnsCounters } from '../../src/dns/dns-counters.js';
import { syntheticTable } from '../vip/synthetic-table.js';
import { machineLoad, percentile, round } from '../vip/measure.js';

const report: PassReport = { namespaces: 0, sysctls: 0, gwLegs: 0, overlayOps: 0, lbChanges: 1, meshRules: 0, health: 0, processes: 0, dns: 0, removed: 0, pruned: 0, errors: [] };
const views: AgentViews = { failingTargets: () => [], storeConnected: () => true, storeRevision: () => 1, tasks: () => [], dnsCounters: async () => emptyDnsCounters() };

async function measure(services: number): Promise<{ passUs: number; scrapeMs: number; scrapeKB: number }> {
  const table = syntheticTable(services, 10);
  // The agent's e-w tables are one object shared by every task namespace on the same networks: 20 here.
  const plan = { lbTables: Array.from({ length: 20 }, (_, i) => ({ netns: `/run/meshnet/netns/t-${i}`, table })) } as unknown as NodePlan;
  const snapshot = { revision: 1, services: [] } as unknown as ClusterSnapshot;
  const m = new AgentMetrics({ version: 'bench' });
  m.started(views);
  const pass: PassObservation = { seconds: 0.01, report, plan, snapshot, resync: false };
  const rounds = 20_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) m.passFinished(pass);
  const passUs = Number(process.hrtime.bigint() - t0) / 1000 / rounds;
  const scrapes: number[] = [];
  let size = 0;
  for (let i = 0; i < 5; i++) {
    const s0 = performance.now();
    size = (await m.registry.metrics()).length;
    scrapes.push(performance.now() - s0);
  }
  return { passUs, scrapeMs: percentile(scrapes.sort((a, b) => a - b), 50), scrapeKB: size / 1024 };
}

const summary: Record<string, number> = {};
console.log(`agent metrics cost (${machineLoad()})`);
console.log('services x 10 backends   passFinished   /metrics scrape (median of 5)   body');
for (const n of [100, 1000, 10_000]) {
  const r = await measure(n);
  console.log(`${String(n).padStart(8)}                ${r.passUs.toFixed(2).padStart(6)} us      ${r.scrapeMs.toFixed(1).padStart(8)} ms                     ${Math.round(r.scrapeKB)} KB`);
  summary[`passFinishedUs_${n}`] = round(r.passUs);
  summary[`scrapeMs_${n}`] = round(r.scrapeMs);
  summary[`scrapeKB_${n}`] = Math.round(r.scrapeKB);
}
console.log(JSON.stringify(summary));
