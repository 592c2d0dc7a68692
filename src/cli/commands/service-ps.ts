import { Command } from 'commander';
import { isGlobal } from '../../model/cluster-placement.js';
import { CliError, EXIT, printJson, withCluster, type StoreChoice } from '../cli-context.js';
import { nameProblem } from '../../model/records.js';
import { readServiceHistory, TASK_HISTORY_RETENTION_LIMIT } from '../../model/task-history.js';
import { parsePsFilters, psIds, psRows, renderPsTable, selectRows, type PsRow } from './service-ps-rows.js';

const collect = (v: string, acc: string[]) => [...acc, v];

/** `meshnet service ps SERVICE [SERVICE...] [--no-trunc] [-q] [--filter KEY=VALUE] [--json]`. */
export function servicePsCommand(storeOption: () => StoreChoice): Command {
  return new Command('ps')
    .description(
      `list the tasks of services: ID, NAME, NODE, DESIRED STATE, CURRENT STATE, ERROR; under each slot's task, its last ${TASK_HISTORY_RETENTION_LIMIT - 1} finished tasks (a restart in place counts as one) shown as " \\_ web.1"`,
    )
    .argument('<service...>', 'service names')
    .option('--no-trunc', 'full task ids and errors')
    .option('-q, --quiet', 'print the task ids only')
    .option('-f, --filter <key=value>', 'show only the tasks that match: desired-state=running|shutdown, node=NODE, id=PREFIX or name=TASK (repeat)', collect, [] as string[])
    .option('--json', 'machine-readable output: one object per line of the table, `history` true for finished tasks')
    .action(async (names: string[], o: { trunc: boolean; quiet?: boolean; filter: string[]; json?: boolean }) => {
      for (const n of names) {
        const problem = nameProblem('service', n);
        if (problem) throw new CliError(problem, EXIT.usage);
      }
      const filters = parsePsFilters(o.filter);
      const rows: PsRow[] = await withCluster(storeOption(), async (cluster, store) => {
        const out: PsRow[] = [];
        for (const name of new Set(names)) {
          const record = await cluster.getService(name);
          if (!record) throw new CliError(`no service named ${name}: see meshnet service ls`, EXIT.usage);
          const [tasks, history] = await Promise.all([cluster.listTasks({ service: name }), readServiceHistory(store, name)]);
          out.push(...psRows(name, tasks, history, { global: isGlobal(record) }));
        }
        return out;
      });
      const shown = selectRows(rows, filters);
      if (o.json) printJson(shown);
      else if (o.quiet) for (const id of psIds(shown, o.trunc)) console.log(id);
      else console.log(renderPsTable(shown, new Date(), o.trunc));
    });
}
