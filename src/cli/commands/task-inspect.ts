import { Command } from 'commander';
import { CliError, EXIT, printJson, withCluster, type StoreChoice } from '../cli-context.js';
import type { Cluster } from '../../model/cluster.js';
import type { TaskRecord } from '../../model/records.js';

/** The task `name` names: SERVICE.SLOT as `task ls` shows it, or a task id; a usage error when there is none. */
export async function findTask(cluster: Cluster, name: string): Promise<TaskRecord> {
  const m = /^(.+)\.(\d+)$/.exec(name);
  const all = m ? await cluster.listTasks({ service: m[1]! }) : await cluster.listTasks();
  const found = m ? all.find((x) => x.slot === Number(m[2])) : all.find((x) => x.id === name);
  if (!found) throw new CliError(`no task ${name}: give SERVICE.SLOT or a task id as meshnet task ls shows them`, EXIT.usage);
  return found;
}

/** `meshnet task inspect TASK`: the task's record, with its health (status, failures in a row, the results that changed it). */
export function taskInspectCommand(storeOption: () => StoreChoice): Command {
  return new Command('inspect')
    .argument('<task>', 'SERVICE.SLOT as meshnet task ls shows it, or a task id')
    .description('show a task: node, state and why, restarts, addresses, and its health when its service has a health check')
    .action(async (name: string) =>
      withCluster(storeOption(), async (cluster) => {
        const t = await findTask(cluster, name);
        printJson({ task: `${t.service}.${t.slot}`, ...t });
      }),
    );
}
