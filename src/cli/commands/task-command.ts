import { Command } from 'commander';
import { printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { renderTable } from '../table.js';

/** `meshnet task ls`. */
export function taskCommand(storeOption: () => StoreChoice): Command {
  const task = new Command('task').description('tasks (replicas of services)');
  task
    .command('ls')
    .description('list tasks')
    .option('--service <name>', 'only this service\'s tasks')
    .option('--node <name>', 'only tasks on this node')
    .option('--json', 'machine-readable output')
    .action(async (o: { service?: string; node?: string; json?: boolean }) =>
      withCluster(storeOption(), async (cluster) => {
        const filter: { service?: string; node?: string } = {};
        if (o.service) filter.service = o.service;
        if (o.node) filter.node = o.node;
        const tasks = await cluster.listTasks(filter);
        if (o.json) return printJson(tasks);
        console.log(
          renderTable(
            ['TASK', 'NODE', 'DESIRED', 'STATE', 'RESTARTS', 'ADDRESSES', 'MESSAGE'],
            tasks.map((t) => [`${t.service}.${t.slot}`, t.node, t.desiredState, t.state, t.restarts, Object.entries(t.addresses).map(([n, a]) => `${n}=${a.ip}`).join(' '), t.message ?? '']),
          ),
        );
      }),
    );
  return task;
}
