import { Command } from 'commander';
import { taskDisplayName } from '../placement-status.js';
import { CliError, EXIT, printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { renderTable } from '../table.js';
import { nameProblem } from '../../model/records.js';
import type { KvStore } from '../../store/kv-store.js';
import type { TaskRecord } from '../../model/records.js';
import { readNodeStatuses } from '../../agent/node-status.js';
import { ApiSettingsError } from '../../api/api-errors.js';
import { resolveApiTls, type ApiTlsSource } from '../../api/api-tls.js';
import { logTargets, printTaskLogs } from '../../api/task-log-fetch.js';
import { taskInspectCommand } from './task-inspect.js';
import { withHealthColumn } from './health-column.js';

/** Flags of `task logs` and `service logs`. */
export interface LogFlags {
  follow?: boolean;
  tail?: string;
  raw?: boolean;
  json?: boolean;
  apiCert?: string;
  apiKey?: string;
  apiCa?: string;
}

/** Adds the flags `task logs` and `service logs` share. */
export function addLogFlags(cmd: Command): Command {
  return cmd
    .option('-f, --follow', 'keep printing what the tasks write until they end (Ctrl-C stops)')
    .option('--tail <n>', 'only the last N lines of each task (rotated files included), or all', 'all')
    .option('--raw', 'print the lines without the TASK@NODE | prefix')
    .option('--json', 'one JSON object a line: {"task","node","line"}')
    .option('--api-cert <file>', 'client certificate for agents that serve their API over HTTPS (default: --etcd-cert)')
    .option('--api-key <file>', 'key of --api-cert (default: --etcd-key)')
    .option('--api-ca <file>', 'CA that signs the agents\' certificates (default: --etcd-cacert)');
}

/** Validates the log flags at the edge: the tail count and the TLS material. */
function logSettings(o: LogFlags, store: StoreChoice): { tail: number | undefined; tls: ApiTlsSource | undefined } {
  let tail: number | undefined;
  if (o.tail !== undefined && o.tail !== 'all') {
    if (!/^[0-9]{1,9}$/.test(o.tail)) throw new CliError(`invalid --tail ${JSON.stringify(o.tail)}: give a number of lines from 0, or all`, EXIT.usage);
    tail = Number(o.tail);
  }
  try {
    return { tail, tls: resolveApiTls(o, store.options.etcd?.tls) };
  } catch (err) {
    if (err instanceof ApiSettingsError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

/** Each node's advertised agent API endpoint. */
export async function nodeEndpoints(store: KvStore): Promise<Map<string, string | undefined>> {
  return new Map((await readNodeStatuses(store)).map((s) => [s.node, s.api]));
}

/**
 * Prints the tasks' logs, fetched from their nodes' agents, prefixed TASK@NODE. A follow ends when
 * every task has ended or on Ctrl-C (exit 0); a node that cannot be reached fails the command (exit 1)
 * after the others are printed.
 */
export async function printLogs(tasks: readonly TaskRecord[], endpoints: ReadonlyMap<string, string | undefined>, o: LogFlags, store: StoreChoice): Promise<void> {
  const { tail, tls } = logSettings(o, store);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A closed pipe (| head) ends the command like Ctrl-C does.
  process.stdout.once('error', stop);
  let failures;
  try {
    failures = await printTaskLogs(logTargets(tasks, endpoints), {
      tail,
      follow: o.follow === true,
      tls,
      signal: ac.signal,
      format: o.json ? 'json' : o.raw ? 'raw' : 'prefixed',
      write: (text) => {
        if (!ac.signal.aborted) process.stdout.write(text);
      },
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.stdout.off('error', stop);
  }
  if (failures.length === 0) return;
  for (const f of failures.slice(0, -1)) console.error(`meshnet: ${f.label}: ${f.error}`);
  const last = failures[failures.length - 1]!;
  throw new CliError(`${last.label}: ${last.error}`, EXIT.failed);
}

function checkName(kind: 'service' | 'node', name: string): void {
  const problem = nameProblem(kind, name);
  if (problem) throw new CliError(problem, EXIT.usage);
}

/** `meshnet task ls|logs|attach|detach`. */
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
        const services = new Map((await cluster.listServices()).map((s) => [s.name, s] as const));
        console.log(
          renderTable(
            withHealthColumn(tasks, ['TASK', 'NODE', 'DESIRED', 'STATE', 'RESTARTS', 'ADDRESSES', 'MESSAGE']),
            tasks.map((t) => withHealthColumn(tasks, [taskDisplayName(services.get(t.service), t), t.node, t.desiredState, t.state, t.restarts, Object.entries(t.addresses).map(([n, a]) => `${n}=${a.ip}`).join(' '), t.message ?? ''], t)),
          ),
        );
      }),
    );
  task.addCommand(taskInspectCommand(storeOption));
  addLogFlags(
    task
      .command('logs <task>')
      .description('print a task\'s output (stdout and stderr), fetched from the agent of its node; TASK is SERVICE.SLOT as task ls shows it, or a task id'),
  ).action(async (name: string, o: LogFlags) => {
    const store = storeOption();
    logSettings(o, store); // bad flags are refused before the store is opened
    const { task: t, endpoints } = await withCluster(store, async (cluster, kv) => {
      const m = /^(.+)\.(\d+)$/.exec(name);
      const all = m ? await cluster.listTasks({ service: m[1]! }) : await cluster.listTasks();
      const found = m ? all.find((x) => x.slot === Number(m[2])) : all.find((x) => x.id === name);
      if (!found) throw new CliError(`no task ${name}: give SERVICE.SLOT or a task id as meshnet task ls shows them`, EXIT.usage);
      if (found.external) throw new CliError(`${name} is an attached namespace: its output is the other runtime's (meshnet runs no process for it)`, EXIT.usage);
      return { task: found, endpoints: await nodeEndpoints(kv) };
    });
    await printLogs([t], endpoints, o, store);
  });
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
      // Loaded here: it reads the file through libc (koffi), which no other CLI command needs.
      const { assertForeignNetns, NotANetworkNamespaceError } = await import('../../tasks/netns-file.js');
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
