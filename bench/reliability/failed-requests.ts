/**
 * Failed requests per reliability scenario (issue 10 item 9), on the same lab and scenarios as
 * test/reliability: a fresh-connection probe through a published port while one thing fails.
 * Run: npm run build && node dist/bench/reliability/failed-requests.js [--keep-reports DIR] [scenario ...]
 * Prints each scenario's explanation, a table, and one JSON line naming the figures; --keep-reports
 * writes every raw probe report (each attempt's start, outcome and answering task) to DIR.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../src/log/logger.js';
import { ReliabilityLab } from '../../src/lab/reliability-lab.js';
import { SCENARIOS, type ScenarioResult } from '../../src/lab/reliability-scenarios.js';
import { benchFigures, formatScenario, formatTable } from '../../src/lab/reliability-report.js';

async function main(): Promise<void> {
  const log = createLogger({ component: 'reliability-bench', level: 'info' });
  const { values, positionals: wanted } = parseArgs({ options: { 'keep-reports': { type: 'string' } }, allowPositionals: true });
  const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.name === w));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}: choose from ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const chosen = wanted.length > 0 ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  const started = Date.now();
  const rl = await ReliabilityLab.create(log, { leaseTtlSeconds: 10, ...(values['keep-reports'] ? { keepReportsIn: values['keep-reports'] } : {}) });
  const results: ScenarioResult[] = [];
  try {
    for (const s of chosen) {
      const r = await s.run(rl);
      console.log(formatScenario(r));
      results.push(r);
    }
  } finally {
    await rl.destroy();
  }
  console.log(`\n${formatTable(results)}\n\n${results.length} scenarios in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(JSON.stringify(benchFigures(results)));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
