import { Command, Option } from 'commander';
import { CliError, EXIT, printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { parsePublishFlag } from '../publish-flag.js';
import { waitForService } from '../convergence.js';
import { addRolloutFlags, rolloutConfigsFromFlags } from '../rollout-flags.js';
import { addUpdateFlags, followUpdate, resumesRollout, serviceRollbackCommand, updateFromFlags } from './service-update-command.js';
import { ENV_NAME, nameProblem, type ServiceSpec } from '../../model/records.js';
import { CAPABILITY_RULE, normalizeCapability, type CapabilityName } from '../../tasks/capabilities.js';
import { parseUserSpec, USER_RULE } from '../../tasks/task-user.js';
import { readNodeStatuses } from '../../agent/node-status.js';
import { addLogFlags, nodeEndpoints, printLogs, type LogFlags } from './task-command.js';
import { addPlacementUpdateFlags, placementFromCreateFlags, placementFromUpdateFlags } from '../placement-flags.js';
import { readPlacementStatus, taskDisplayName } from '../placement-status.js';
import { SERVICE_MODES } from '../../model/service-placement.js';
import { networkAttachments } from '../network-flag.js';
import { portsText, serviceLsCommand } from './service-ls.js';
import { servicePsCommand } from './service-ps.js';
import { addLifecycleFlags, lifecycleFromFlags, type LifecycleFlags } from '../lifecycle-flags.js';

/** Commander's collector of a repeated flag. */
export const collect = (v: string, acc: string[]) => [...acc, v];

function parseAffinity(v: string): { timeoutSeconds: number } {
  const m = /^client-ip(?:,(\d+))?$/.exec(v);
  if (!m) throw new CliError(`invalid --lb-affinity ${JSON.stringify(v)}: use client-ip or client-ip,SECONDS`, EXIT.usage);
  return { timeoutSeconds: m[1] ? Number(m[1]) : 10_800 };
}

function parseEnv(list: string[]): Record<string, string> | undefined {
  if (list.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    const name = kv.slice(0, Math.max(eq, 0));
    if (eq < 1 || !ENV_NAME.test(name)) {
      throw new CliError(`invalid --env ${JSON.stringify(kv)}: use NAME=VALUE, NAME of letters, digits and "_", not starting with a digit`, EXIT.usage);
    }
    env[name] = kv.slice(eq + 1);
  }
  return env;
}

function checkName(kind: 'service' | 'network', name: string): void {
  const problem = nameProblem(kind, name);
  if (problem) throw new CliError(problem, EXIT.usage);
}

function parseUser(value: string): string {
  if (!parseUserSpec(value)) throw new CliError(`invalid --user ${JSON.stringify(value)}: use ${USER_RULE}`, EXIT.usage);
  return value;
}

function parseCapabilities(flag: string, list: string[]): CapabilityName[] | undefined {
  if (list.length === 0) return undefined;
  return list.map((c) => {
    const name = normalizeCapability(c);
    if (!name) throw new CliError(`invalid ${flag} ${JSON.stringify(c)}: use ${CAPABILITY_RULE} (see man 7 capabilities)`, EXIT.usage);
    return name;
  });
}

/** `meshnet service create|ls|inspect|scale|rm`. */
export function serviceCommand(storeOption: () => StoreChoice): Command {
  const svc = new Command('service').description('replicated and global services');
  addLifecycleFlags(addRolloutFlags(svc.command('create')))
    .description('create a service and wait until its tasks run (the command follows the options, after --)')
    .requiredOption('--name <name>', 'service name (also its DNS name)')
    .option('--replicas <n>', 'number of tasks', '1')
    .addOption(new Option('--mode <mode>', 'replicated: --replicas tasks; global: one task on every eligible node, also nodes that join later').choices([...SERVICE_MODES]).default('replicated'))
    .option('--constraint <expr>', 'run only on nodes matching node.id==ID, node.hostname==NAME, node.labels.KEY==VALUE, or != (repeat: all must match)', collect, [] as string[])
    .option('--replicas-max-per-node <n>', 'at most this many tasks of the service on one node (0: unlimited)', '0')
    .option('-p, --publish <spec>', 'publish a port: [mode=ingress|host,][policy=cluster|local,]PUBLISHED:TARGET[/udp] (repeat)', collect, [] as string[])
    .option('--network <network>', 'attach to an overlay network: NAME, or name=NAME,alias=ALIAS[,alias=...] to give the service DNS aliases answered on that network only (repeat)', collect, [] as string[])
    .option('--network-alias <alias>', 'a DNS alias of the service on every network given with --network, not on ingress (repeat)', collect, [] as string[])
    .addOption(new Option('--endpoint-mode <mode>', 'vip: one virtual IP; dnsrr: DNS returns task IPs').choices(['vip', 'dnsrr']).default('vip'))
    .addOption(new Option('--lb-scheduler <name>', 'how the VIP spreads connections').choices(['rr', 'wrr', 'lc', 'sh', 'mh', 'random']).default('rr'))
    .option('--lb-affinity <spec>', 'client-ip[,SECONDS]: a client keeps its task')
    .option('--health-port <port>', 'HTTP health port for policy=local published ports')
    .option('-e, --env <NAME=VALUE>', 'environment variable of the tasks (repeat)', collect, [] as string[])
    .option('-u, --user <user>', 'run the tasks as UID[:GID] or NAME[:GROUP] (as docker run --user; default root)')
    .option('--cap-add <cap>', 'add a Linux capability to Docker\'s default set, e.g. NET_ADMIN, or ALL (repeat)', collect, [] as string[])
    .option('--cap-drop <cap>', 'drop a Linux capability from Docker\'s default set, e.g. NET_RAW, or ALL (repeat)', collect, [] as string[])
    .option('-d, --detach', 'return at once instead of waiting for the tasks')
    .option('--timeout <seconds>', 'how long to wait for the tasks', '120')
    .option('--json', 'machine-readable output')
    .argument('<command...>', 'the program each task runs, with its arguments')
    .action(async (command: string[], o: Record<string, string | string[] | boolean>, cmd: Command) =>
      withCluster(storeOption(), async (cluster) => {
        checkName('service', o['name'] as string);
        const attachments = networkAttachments(o['network'] as string[], o['networkAlias'] as string[]);
        const replicas = Number(o['replicas']);
        if (!Number.isInteger(replicas) || replicas < 0) throw new CliError(`invalid --replicas ${String(o['replicas'])}: a whole number from 0`, EXIT.usage);
        const spec: ServiceSpec = {
          name: o['name'] as string,
          replicas,
          command,
          ...attachments,
          endpointMode: o['endpointMode'] as 'vip' | 'dnsrr',
          ports: (o['publish'] as string[]).map(parsePublishFlag),
          lb: { scheduler: o['lbScheduler'] as 'rr' },
        };
        if (o['lbAffinity']) spec.lb = { ...spec.lb!, affinity: parseAffinity(o['lbAffinity'] as string) };
        if (o['healthPort']) spec.healthPort = Number(o['healthPort']);
        const env = parseEnv(o['env'] as string[]);
        if (env) spec.env = env;
        if (o['user'] !== undefined) spec.user = parseUser(o['user'] as string);
        const capAdd = parseCapabilities('--cap-add', o['capAdd'] as string[]);
        if (capAdd) spec.capAdd = capAdd;
        const capDrop = parseCapabilities('--cap-drop', o['capDrop'] as string[]);
        if (capDrop) spec.capDrop = capDrop;
        Object.assign(spec, rolloutConfigsFromFlags(o));
        Object.assign(spec, lifecycleFromFlags(o as LifecycleFlags));
        const placement = placementFromCreateFlags(o, cmd.getOptionValueSource('replicas') === 'cli');
        Object.assign(spec, placement);
        if (placement.mode === 'global') delete spec.replicas;
        if (spec.ports!.some((p) => (p.mode ?? 'ingress') === 'ingress')) await cluster.ensureIngressNetwork();
        const rec = await cluster.createService(spec);
        if (o['json']) printJson(rec);
        else console.log(`service ${rec.name} created${rec.ports.length ? `, published ${portsText(rec)}` : ''}${Object.keys(rec.vips).length ? `, VIPs ${Object.entries(rec.vips).map(([n, ip]) => `${n}=${ip}`).join(' ')}` : ''}`);
        if (!o['detach']) await waitForService(cluster, rec.name, rec.replicas, Number(o['timeout']));
      }),
    );
  svc.addCommand(serviceLsCommand(storeOption));
  svc.addCommand(servicePsCommand(storeOption));
  svc
    .command('inspect <name>')
    .description('show a service: VIPs, published ports, tasks, each node\'s backend set and LB backend kind, and stored records that are invalid')
    .option('--json', 'machine-readable output only (no warnings on stderr)')
    .action(async (name: string, o: { json?: boolean }) =>
      withCluster(storeOption(), async (cluster, store) => {
        // Records that fail validation are shown, not fatal: agents leave such a service as it was, and the
        // operator needs to see why it no longer follows its record.
        const view = await cluster.inspectService(name);
        if (!view) throw new CliError(`no service named ${name}: see meshnet service ls`, EXIT.usage);
        const statuses = await readNodeStatuses(store);
        const placed = view.service ? await readPlacementStatus(cluster, view.service, view.tasks) : undefined;
        printJson({
          ...(view.service ?? { name }),
          // e.g. "2/3 running; 1 pending: no suitable node (1 node matches node.labels.zone==eu, max 1 per node)"
          ...(placed ? { status: placed.text, pending: placed.pending, ...(placed.pendingReason ? { pendingReason: placed.pendingReason } : {}) } : {}),
          tasks: view.tasks.map((t) => ({ task: taskDisplayName(view.service, t), id: t.id, node: t.node, state: t.state, desiredState: t.desiredState, specVersion: t.specVersion ?? 0, addresses: t.addresses, restarts: t.restarts, ...(t.message !== undefined ? { message: t.message } : {}), ...(t.health ? { health: t.health } : {}), ...(t.replaces ? { replaces: t.replaces } : {}) })),
          // A node's conflicts that name this service: a published port it shadows or could not claim there.
          nodes: statuses.map((st) => {
            const conflicts = (st.conflicts ?? []).filter((c) => new RegExp(`\\bservice ${name}\\b`).test(c));
            return { node: st.node, lbBackend: st.lbBackend, updatedAt: st.updatedAt, frontends: st.services[name] ?? {}, ...(conflicts.length ? { conflicts } : {}) };
          }),
          invalid: view.invalid,
        });
        if (!o.json) {
          for (const st of statuses) {
            for (const c of st.conflicts ?? []) if (new RegExp(`\\bservice ${name}\\b`).test(c)) process.stderr.write(`warning: on ${st.node}: ${c}\n`);
          }
          for (const bad of view.invalid) {
            process.stderr.write(`warning: the stored ${bad.kind ?? 'record'} at ${bad.key} is invalid and is left as it is (${bad.error}); fix or remove it\n`);
          }
        }
      }),
    );
  svc
    .command('scale <name=replicas...>')
    .description('change the number of tasks, e.g. meshnet service scale web=5')
    .option('-d, --detach', 'return at once')
    .option('--timeout <seconds>', 'how long to wait', '120')
    .action(async (pairs: string[], o: { detach?: boolean; timeout: string }) =>
      withCluster(storeOption(), async (cluster) => {
        for (const pair of pairs) {
          const m = /^([^=]+)=(\d+)$/.exec(pair);
          if (!m) throw new CliError(`invalid ${JSON.stringify(pair)}: use SERVICE=REPLICAS`, EXIT.usage);
          const rec = await cluster.scaleService(m[1]!, Number(m[2]));
          console.log(`${rec.name} scaled to ${rec.replicas}`);
          if (!o.detach) await waitForService(cluster, rec.name, rec.replicas, Number(o.timeout));
        }
      }),
    );
  addLifecycleFlags(addUpdateFlags(addPlacementUpdateFlags(svc.command('update <name>'))))
    .description('change a service; a new command (after --), environment or network list, or --force, rolls out a batch at a time (--update-*)')
    .option('--publish-add <spec>', 'publish a port (same forms as --publish; repeat)', collect, [] as string[])
    .option('--publish-rm <port[/proto]>', 'unpublish a port, e.g. 8000 or 5353/udp (repeat)', collect, [] as string[])
    .option('--replicas <n>', 'number of tasks')
    .option('-e, --env-add <NAME=VALUE>', 'add or change an environment variable of the tasks (repeat)', collect, [] as string[])
    .addOption(new Option('--lb-scheduler <name>', 'how the VIP spreads connections').choices(['rr', 'wrr', 'lc', 'sh', 'mh', 'random']))
    .option('-d, --detach', 'return at once')
    .option('--timeout <seconds>', 'how long to wait', '120')
    .action(async (name: string, command: string[], o: Record<string, string | string[] | boolean | undefined>) =>
      withCluster(storeOption(), async (cluster) => {
        const current = await cluster.getService(name);
        if (!current) throw new CliError(`no service named ${name}: see meshnet service ls`, EXIT.usage);
        const update: Parameters<typeof cluster.updateService>[1] = {};
        const rm = (o['publishRm'] as string[]).map((v) => {
          const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(v);
          if (!m) throw new CliError(`invalid --publish-rm ${JSON.stringify(v)}: use PUBLISHED or PUBLISHED/udp`, EXIT.usage);
          return { published: Number(m[1]), protocol: (m[2] ?? 'tcp') as 'tcp' | 'udp' };
        });
        for (const r of rm) {
          if (!current.ports.some((p) => p.published === r.published && p.protocol === r.protocol)) {
            throw new CliError(`${name} does not publish ${r.published}/${r.protocol}: see meshnet service inspect ${name}`, EXIT.usage);
          }
        }
        const add = (o['publishAdd'] as string[]).map(parsePublishFlag);
        // Tasks get an ingress address when they are placed; a service placed without one cannot join the mesh in place.
        if (add.some((p) => (p.mode ?? 'ingress') === 'ingress') && current.vips['ingress'] === undefined) {
          throw new CliError(`${name} was created without ingress publishing, so its tasks have no ingress address: publish with mode=host, or recreate it with --publish`, EXIT.usage);
        }
        if (rm.length || add.length) {
          const kept = current.ports.filter((p) => !rm.some((r) => r.published === p.published && r.protocol === p.protocol));
          update.ports = [...kept, ...add];
        }
        if (o['replicas'] !== undefined) {
          const n = Number(o['replicas']);
          if (!Number.isInteger(n) || n < 0) throw new CliError(`invalid --replicas ${String(o['replicas'])}: a whole number from 0`, EXIT.usage);
          update.replicas = n;
        }
        const env = parseEnv(o['envAdd'] as string[]);
        if (env) update.env = { ...(current.env ?? {}), ...env };
        if (o['lbScheduler']) update.lb = { ...current.lb, scheduler: o['lbScheduler'] as 'rr' };
        const placement = placementFromUpdateFlags(o);
        if (placement) update.placement = placement;
        Object.assign(update, updateFromFlags(name, current, update, command, o));
        Object.assign(update, lifecycleFromFlags(o as LifecycleFlags, current));
        if (Object.keys(update).length === 0 && !resumesRollout(current)) throw new CliError('nothing to update: give a new command after --, --env-rm, --network-add, --network-rm, --force, an --update-* flag, --publish-add, --publish-rm, --replicas, --env-add, --lb-scheduler, --constraint-add, --constraint-rm, --replicas-max-per-node, --health-*, --no-healthcheck or --restart-*', EXIT.usage);
        const rec = await cluster.updateService(name, update);
        await followUpdate(cluster, current, rec, o);
      }),
    );
  svc.addCommand(serviceRollbackCommand(storeOption));
  addLogFlags(
    svc
      .command('logs <name>')
      .description('print the output of every task of a service from the agents of their nodes, each line prefixed TASK@NODE'),
  ).action(async (name: string, o: LogFlags) => {
    checkName('service', name);
    const store = storeOption();
    const { tasks, endpoints } = await withCluster(store, async (cluster, kv) => {
      if (!(await cluster.getService(name))) throw new CliError(`no service named ${name}: see meshnet service ls`, EXIT.usage);
      return { tasks: await cluster.listTasks({ service: name }), endpoints: await nodeEndpoints(kv) };
    });
    await printLogs(tasks, endpoints, o, store);
  });
  svc
    .command('rm <name...>')
    .description('remove services (their tasks stop, their ports and VIPs are released on every host)')
    .action(async (names: string[]) =>
      withCluster(storeOption(), async (cluster) => {
        for (const n of names) {
          await cluster.removeService(n);
          console.log(`service ${n} removed`);
        }
      }),
    );
  return svc;
}
