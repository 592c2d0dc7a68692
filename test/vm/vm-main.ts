/**
 * The kernel test VM's program (compiled, started by vm-init.sh): one node start for both
 * scenarios, since starting node costs the emulated CPU about ten seconds. A failing scenario
 * prints its error section and the other still runs.
 */
import { espScenario } from './esp-vm-scenario.js';
import { ipvsScenario } from './ipvs-vm-scenario.js';
import { section, stage } from './vm-console.js';

const describeError = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e));

stage('scenario');
const scenarios: [errorSection: string, run: () => Promise<void>, done: string][] = [
  ['SCENARIO_ERROR', ipvsScenario, 'ipvs_done'],
  ['ESP_SCENARIO_ERROR', espScenario, 'esp_done'],
];
for (const [errorSection, run, done] of scenarios) {
  try {
    await run();
  } catch (e) {
    section(errorSection, describeError(e));
    process.exitCode = 1;
  }
  stage(done);
}
