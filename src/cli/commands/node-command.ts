import { Command, Option } from 'commander';
import { CliError, EXIT, printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { renderTable } from '../table.js';
import { readNodeStatuses, type NodeStatus } from '../../agent/node-status.js';
import { NodeLiveError } from '../../model/model-errors.js';
import type { NodeView } from '../../model/node-info.js';
import { LABEL_KEY, LABEL_KEY_RULE, nameProblem, NODE_AVAILABILITIES, type NodeAvailability, type NodeUpdate, type TaskRecord } from '../../model/records.js';

const collect = (v: string, acc: string[]) => [...acc, v];

function checkNodeName(name: string): void {
  const problem = nameProblem('node', name);
  if (problem) throw new CliError(problem, EXIT.usage);
}

function checkLabelKey(flag: string, given: string, key: string): void {
  if (!LABEL_KEY.test(key)) throw new CliError(`invalid ${flag} ${JSON.stringify(given)}: label keys are ${LABEL_KEY_RULE}`, EXIT.usage);
}

/** `--label-add k=v` (or `k`, an empty value, as Docker takes it) into a label map. */
function parseLabelAdd(list: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    const key = eq < 0 ? kv : kv.slice(0, eq);
    checkLabelKey('--label-add', kv, key);
    labels[key] = eq < 0 ? '' : kv.slice(eq + 1);
  }
  return labels;
}

/** A node as `node ls --json` and `node inspect` show it: its view, what its agent published, its tasks. */
function describeNode(view: NodeView, status: NodeStatus | undefined, tasks: readonly TaskRecord[]) {
  const mine = tasks.filter((t) => t.node === view.id);
  return {
    ...view,
    // A down node's published status went with its lease; what it last programmed is unknown.
    lbBackend: view.status === 'ready' ? (status?.lbBackend ?? null) : null,
    runningTasks: mine.filter((t) => t.state === 'running').length,
    tasks: mine.map((t) => ({ task: `${t.service}.${t.slot}`, id: t.id, state: t.state, desiredState: t.desiredState, restarts: t.restarts, ...(t.message !== undefined ? { message: t.message } : {}) })),
    published: view.status === 'ready' && status ? { lbBackend: status.lbBackend, updatedAt: status.updatedAt, services: status.services, conflicts: status.conflicts ?? [] } : null,
  };
}

const labelText = (labels: Record<string, string>): string => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ') || '-';

/** The person's view of `node inspect`: fields, then the node's tasks, then what it could not do. */
function renderInspect(d: ReturnType<typeof describeNode>): string {
  const fields: [string, string][] = [
    ['ID', d.id],
    ['NAME', d.name],
    ['STATUS', d.status],
    ['AVAILABILITY', d.availability],
    ['ADDRESS', d.address],
    ['LB BACKEND', d.lbBackend ?? '-'],
    ['LABELS', labelText(d.labels)],
    ['STATUS UPDATED', d.published?.updatedAt ?? '-'],
  ];
  const out = fields.map(([k, v]) => `${`${k}:`.padEnd(16)}${v}`);
  out.push('', d.tasks.length ? renderTable(['TASK', 'ID', 'STATE', 'DESIRED', 'RESTARTS'], d.tasks.map((t) => [t.task, t.id.slice(0, 12), t.state, t.desiredState, t.restarts])) : 'no tasks');
  const conflicts = d.published?.conflicts ?? [];
  if (conflicts.length) out.push('', 'CONFLICTS:', ...conflicts.map((c) => `  ${c}`));
  return out.join('\n');
}

/** `meshnet node ls|inspect|rm|update`. */
export function nodeCommand(storeOption: () => StoreChoice): Command {
  const node = new Command('node').description('nodes (hosts running an agent)');
  node
    .command('ls')
    .description('list nodes, live (ready) or not (down), with their availability')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withCluster(storeOption(), async (cluster, store) => {
        const [views, tasks, statuses] = await Promise.all([cluster.nodeViews(), cluster.listTasks(), readNodeStatuses(store)]);
        const described = views.map((v) => describeNode(v, statuses.find((s) => s.node === v.id), tasks));
        if (o.json) return printJson(described.map(({ tasks: _t, published: _p, ...rest }) => rest));
        const rows = described.map((d) => [d.id, d.status, d.availability, d.address, d.lbBackend ?? '-', d.runningTasks]);
        console.log(renderTable(['NODE', 'STATUS', 'AVAILABILITY', 'ADDRESS', 'LB BACKEND', 'RUNNING TASKS'], rows));
      }),
    );
  node
    .command('inspect <node>')
    .description('show a node: status, availability, labels, address, its tasks and what its agent published (incl. conflicts)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { json?: boolean }) => {
      checkNodeName(name);
      await withCluster(storeOption(), async (cluster, store) => {
        const [view, tasks, statuses] = await Promise.all([cluster.nodeView(name), cluster.listTasks({ node: name }), readNodeStatuses(store)]);
        if (!view) throw new CliError(`no node named ${name}: see meshnet node ls`, EXIT.usage);
        const d = describeNode(view, statuses.find((s) => s.node === name), tasks);
        if (o.json) printJson(d);
        else console.log(renderInspect(d));
      });
    });
  node
    .command('rm <node...>')
    .description('remove nodes that are down: their record, ingress address and leftover tasks (a live node needs --force)')
    .option('-f, --force', 'remove a live node too: its lease is revoked (a running agent registers it again; stop the agent first)')
    .action(async (names: string[], o: { force?: boolean }) => {
      for (const name of names) checkNodeName(name);
      await withCluster(storeOption(), async (cluster) => {
        for (const name of names) {
          try {
            const r = await cluster.removeNode(name, { force: o.force === true });
            const parts = [`${r.removedTasks} task record${r.removedTasks === 1 ? '' : 's'} removed`, ...(r.ingressAddress ? [`ingress address ${r.ingressAddress} released`] : [])];
            console.log(`node ${name} removed${r.wasLive ? ' while live (its lease was revoked)' : ''}: ${parts.join(', ')}`);
          } catch (err) {
            if (err instanceof NodeLiveError) throw new CliError(err.message, EXIT.usage);
            throw err;
          }
        }
      });
    });
  node
    .command('update <node>')
    .description('change what the scheduler may do with a node (availability) and its labels')
    .addOption(new Option('--availability <availability>', 'active: takes tasks; pause: keeps its tasks, takes no new ones; drain: its tasks move elsewhere (drained first, no failed requests)').choices(NODE_AVAILABILITIES))
    .option('--label-add <key=value>', 'add or change a label (repeat)', collect, [] as string[])
    .option('--label-rm <key>', 'remove a label (repeat)', collect, [] as string[])
    .action(async (name: string, o: { availability?: NodeAvailability; labelAdd: string[]; labelRm: string[] }) => {
      checkNodeName(name);
      for (const key of o.labelRm) checkLabelKey('--label-rm', key, key);
      const update: NodeUpdate = {
        ...(o.availability !== undefined ? { availability: o.availability } : {}),
        ...(o.labelAdd.length ? { labelAdd: parseLabelAdd(o.labelAdd) } : {}),
        ...(o.labelRm.length ? { labelRm: o.labelRm } : {}),
      };
      if (Object.keys(update).length === 0) throw new CliError('nothing to update: give --availability, --label-add or --label-rm', EXIT.usage);
      await withCluster(storeOption(), async (cluster) => {
        const info = await cluster.updateNode(name, update);
        const moving = info.availability === 'drain' ? '; its tasks drain and move to active nodes (see meshnet task ls)' : '';
        console.log(`node ${name} updated: availability ${info.availability}, labels ${labelText(info.labels)}${moving}`);
      });
    });
  return node;
}
