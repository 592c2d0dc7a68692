import { Command } from 'commander';
import { printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { renderTable } from '../table.js';
import { readNodeStatuses } from '../../agent/node-status.js';

/** `meshnet node ls`. */
export function nodeCommand(storeOption: () => StoreChoice): Command {
  const node = new Command('node').description('nodes (hosts running an agent)');
  node
    .command('ls')
    .description('list live nodes')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withCluster(storeOption(), async (cluster, store) => {
        const [nodes, tasks, statuses] = await Promise.all([cluster.listNodes(), cluster.listTasks(), readNodeStatuses(store)]);
        if (o.json) return printJson(nodes);
        const rows = nodes.map((n) => [
          n.id,
          n.underlayIp,
          statuses.find((s) => s.node === n.id)?.lbBackend ?? '-',
          tasks.filter((t) => t.node === n.id && t.state === 'running').length,
        ]);
        console.log(renderTable(['NODE', 'ADDRESS', 'LB BACKEND', 'RUNNING TASKS'], rows));
      }),
    );
  return node;
}
