import { Command } from 'commander';
import { CliError, EXIT, printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { renderTable } from '../table.js';
import { nameProblem } from '../../model/records.js';
import { assertForeignNetns, NotANetworkNamespaceError } from '../../tasks/netns-file.js';

function checkName(kind: 'service' | 'node', name: string): void {
  const problem = nameProblem(kind, name);
  if (problem) throw new CliError(problem, EXIT.usage);
}

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
  task
    .command('attach')
    .description('put a network namespace made by another runtime onto a service\'s networks as an extra task')
    .requiredOption('--service <name>', 'the service the namespace serves')
    .requiredOption('--node <name>', 'the node whose agent wires it (the namespace must exist on that host)')
    .requiredOption('--netns <path>', 'the namespace file, e.g. /run/netns/web-extra or /proc/<pid>/ns/net (checked on this host: run it on the node)')
    .option('--json', 'machine-readable output')
    .action(async (o: { service: string; node: string; netns: string; json?: boolean }) => {
      // Checked before the store is opened: a bad path never reaches it.
      checkName('service', o.service);
      checkName('node', o.node);
      try {
        assertForeignNetns(o.netns);
      } catch (err) {
        if (err instanceof NotANetworkNamespaceError) throw new CliError(`--netns ${err.message}`, EXIT.usage);
        throw err;
      }
      await withCluster(storeOption(), async (cluster) => {
        const t = await cluster.attachExternalTask(o.service, o.node, o.netns);
        if (o.json) return printJson(t);
        console.log(`attached ${o.netns} as ${t.service}.${t.slot} on ${t.node}: ${Object.entries(t.addresses).map(([n, a]) => `${n}=${a.ip}`).join(' ')}`);
      });
    });
  task
    .command('detach <task>')
    .description('remove an attached task (SERVICE.SLOT); its namespace is unwired, not deleted')
    .action(async (name: string) =>
      withCluster(storeOption(), async (cluster) => {
        const m = /^(.+)\.(\d+)$/.exec(name);
        if (!m) throw new CliError(`invalid task ${JSON.stringify(name)}: use SERVICE.SLOT as meshnet task ls shows it`, EXIT.usage);
        const t = (await cluster.listTasks({ service: m[1]! })).find((x) => x.slot === Number(m[2]));
        if (!t?.external) throw new CliError(`${name} is not an attached task (see meshnet task ls); replicas are changed with meshnet service scale`, EXIT.usage);
        await cluster.removeTask(t.service, t.slot, t.id);
        console.log(`detached ${name}`);
      }),
    );
  return task;
}
