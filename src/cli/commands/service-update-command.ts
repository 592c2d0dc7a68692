import { Command } from 'commander';
import { CliError, EXIT, printJson, withCluster, type StoreChoice } from '../cli-context.js';
import type { Cluster } from '../../model/cluster.js';
import { parseNetworkFlag } from '../network-flag.js';
import { waitForRollout, waitForService } from '../convergence.js';
import { addRolloutFlags, rolloutConfigsFromFlags } from '../rollout-flags.js';
import { ENV_NAME, nameProblem, type ServiceRecord, type ServiceUpdate } from '../../model/records.js';
import { portsText } from './service-ls.js';
import { collect } from './service-command.js';



// `meshnet service update` and `meshnet service rollback`. A change to what tasks run (command, env, networks,
// --force) is a rolling update the agents carry out (src/model/rolling-update.ts); this only stores it and,
// unless -d, follows it.

/** --network-add / --network-rm applied to the stored network list and aliases. */
function networkChange(name: string, current: ServiceRecord, add: string[], rm: string[]): Pick<ServiceUpdate, 'networks' | 'aliases'> {
  if (add.length === 0 && rm.length === 0) return {};
  for (const n of rm) {
    if (!current.networks.includes(n)) throw new CliError(`invalid --network-rm ${n}: ${name} is not on network ${n} (it is on ${current.networks.join(', ') || 'none'})`, EXIT.usage);
  }
  const networks = current.networks.filter((n) => !rm.includes(n));
  const aliases: Record<string, string[]> = Object.fromEntries(Object.entries(current.aliases ?? {}).filter(([n]) => !rm.includes(n)));
  for (const value of add) {
    const { network, aliases: given } = parseNetworkFlag(value);
    if (networks.includes(network)) throw new CliError(`invalid --network-add ${JSON.stringify(value)}: ${name} is already on network ${network}`, EXIT.usage);
    networks.push(network);
    if (given.length > 0) aliases[network] = given;
  }
  const aliasesChanged = JSON.stringify(aliases) !== JSON.stringify(current.aliases ?? {});
  return { networks, ...(aliasesChanged ? { aliases } : {}) };
}

function envRm(values: string[], env: Record<string, string>): Record<string, string> {
  const out = { ...env };
  for (const v of values) {
    if (!ENV_NAME.test(v)) throw new CliError(`invalid --env-rm ${JSON.stringify(v)}: give a variable name (letters, digits and "_", not starting with a digit)`, EXIT.usage);
    delete out[v];
  }
  return out;
}

/** Adds the flags of rolling updates to `service update`: env-rm, network-add/rm, --force, --update-*, --rollback-*. */
export function addUpdateFlags(cmd: Command): Command {
  cmd
    .argument('[command...]', 'a new command for the tasks, after --: rolled out a batch at a time')
    .option('--env-rm <NAME>', 'remove an environment variable of the tasks (repeat)', collect, [] as string[])
    .option('--network-add <network>', 'attach to a network: NAME or name=NAME,alias=ALIAS (repeat)', collect, [] as string[])
    .option('--network-rm <network>', 'detach from a network (repeat)', collect, [] as string[])
    .option('--force', 'replace every task even if nothing else changes')
    .option('--json', 'print the stored service');
  return addRolloutFlags(cmd);
}

/**
 * The part of an update the rolling-update flags give, over `update` as the other flags built it (env-rm applies
 * to the environment those flags left). A changed command, environment or network list, or --force, starts a
 * rolling update.
 */
export function updateFromFlags(name: string, current: ServiceRecord, update: ServiceUpdate, command: string[], o: Record<string, unknown>): ServiceUpdate {
  const out: ServiceUpdate = { ...rolloutConfigsFromFlags(o), ...networkChange(name, current, (o['networkAdd'] as string[]) ?? [], (o['networkRm'] as string[]) ?? []) };
  const removed = (o['envRm'] as string[]) ?? [];
  if (removed.length) out.env = envRm(removed, update.env ?? current.env ?? {});
  if (command.length > 0) out.command = command;
  if (o['force']) out.force = true;
  return out;
}

/** True when `service update` with no change resumes a paused rollout (Docker: updating again resumes it). */
export function resumesRollout(current: ServiceRecord): boolean {
  return current.updateStatus?.state === 'paused' || current.updateStatus?.state === 'rollback_paused';
}

/** Prints what `service update` stored and, unless -d, follows the rollout it started (or the tasks, when none). */
export async function followUpdate(cluster: Cluster, current: ServiceRecord, rec: ServiceRecord, o: Record<string, unknown>): Promise<void> {
  const rolling = rec.updateStatus !== undefined && rec.updateStatus.startedAt !== current.updateStatus?.startedAt;
  if (o['json']) printJson(rec);
  else console.log(`service ${rec.name} updated${rolling ? ` to version ${rec.version ?? 0} (${rec.updateStatus!.message})` : ''}${rec.ports.length ? `, published ${portsText(rec)}` : ', publishes nothing'}`);
  if (o['detach']) return;
  if (rolling) await waitForRollout(cluster, rec.name, Number(o['timeout']));
  else await waitForService(cluster, rec.name, rec.replicas, Number(o['timeout']));
}

/** `meshnet service rollback NAME`: back to the previous spec, through the rolling-update machinery (--rollback-*). */
export function serviceRollbackCommand(storeOption: () => StoreChoice): Command {
  return new Command('rollback')
    .description('return a service to its spec before the last update, a batch at a time (its --rollback-* settings)')
    .argument('<name>', 'the service')
    .option('-d, --detach', 'return at once instead of following the rollback')
    .option('--timeout <seconds>', 'how long to wait', '300')
    .option('--json', 'print the stored service')
    .action(async (name: string, o: { detach?: boolean; timeout: string; json?: boolean }) =>
      withCluster(storeOption(), async (cluster) => {
        const problem = nameProblem('service', name);
        if (problem) throw new CliError(problem, EXIT.usage);
        if (!(await cluster.getService(name))) throw new CliError(`no service named ${name}: see meshnet service ls`, EXIT.usage);
        const rec = await cluster.rollbackService(name);
        if (o.json) printJson(rec);
        else console.log(`service ${rec.name} rolling back to version ${rec.version ?? 0}`);
        if (!o.detach) await waitForRollout(cluster, rec.name, Number(o.timeout));
      }),
    );
}
