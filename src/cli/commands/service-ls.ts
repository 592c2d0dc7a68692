import { Command } from 'commander';
import { printJson, withCluster, type StoreChoice } from '../cli-context.js';
import { parseFilters, passes, type Filters } from '../filter-flag.js';
import { renderTable } from '../table.js';
import type { ServiceRecord, TaskRecord } from '../../model/records.js';

const collect = (v: string, acc: string[]) => [...acc, v];

/** The filters `service ls` takes, as Docker's: name and id match a prefix (a service's name is its id here). */
const LS_FILTERS = { name: undefined, id: undefined, mode: ['replicated', 'global'] } as const;
const LS_FILTER_FORMS = 'name=PREFIX, id=PREFIX or mode=replicated|global';

/** Parses `service ls --filter` values; a bad one is a CliError (exit 2) naming the accepted forms. */
export function parseLsFilters(values: readonly string[]): Filters {
  return parseFilters(values, LS_FILTERS, LS_FILTER_FORMS);
}

/** A service's mode: the stored field, absent on records of services made before global mode (replicated). */
export function serviceMode(s: Pick<ServiceRecord, 'mode'>): 'replicated' | 'global' {
  return s.mode === 'global' ? 'global' : 'replicated';
}

/** The services that pass the filters, in their stored order. */
export function selectServices<S extends Pick<ServiceRecord, 'name' | 'mode'>>(services: readonly S[], filters: Filters): S[] {
  const prefix = (given: string, value: string) => value.startsWith(given);
  return services.filter((s) => passes(filters, 'name', s.name, prefix) && passes(filters, 'id', s.name, prefix) && passes(filters, 'mode', serviceMode(s)));
}

/**
 * `running/desired` as Docker shows REPLICAS: tasks running that should run, over the replica count (a global
 * service wants one task per eligible node: the tasks that should run, as placed).
 */
export function replicasText(s: Pick<ServiceRecord, 'name' | 'mode' | 'replicas'>, tasks: readonly TaskRecord[]): string {
  const own = tasks.filter((t) => t.service === s.name && !t.external && t.desiredState === 'running');
  const running = own.filter((t) => t.state === 'running').length;
  return `${running}/${serviceMode(s) === 'global' ? own.length : s.replicas}`;
}

/** The published ports as `service ls` shows them. */
export function portsText(s: Pick<ServiceRecord, 'ports'>): string {
  return s.ports.map((p) => `*:${p.published}->${p.target}/${p.protocol}${p.mode === 'host' ? ' (host)' : ''}${p.policy === 'local' ? ' (local)' : ''}`).join(', ');
}

/** The `service ls` table. */
export function renderServiceTable(services: readonly ServiceRecord[], tasks: readonly TaskRecord[]): string {
  return renderTable(
    ['NAME', 'MODE', 'REPLICAS', 'PORTS', 'COMMAND'],
    services.map((s) => [s.name, serviceMode(s), replicasText(s, tasks), portsText(s), s.command.join(' ')]),
  );
}

/** `meshnet service ls [-q] [--filter KEY=VALUE] [--json]`. */
export function serviceLsCommand(storeOption: () => StoreChoice): Command {
  return new Command('ls')
    .description('list services: NAME, MODE (replicated/global), REPLICAS as running/desired, PORTS, COMMAND')
    .option('-q, --quiet', 'print the names only')
    .option('-f, --filter <key=value>', `show only the services that match: ${LS_FILTER_FORMS} (repeat: the values of one key are alternatives, different keys must all match)`, collect, [] as string[])
    .option('--json', 'machine-readable output: one object per service, its stored record')
    .action(async (o: { quiet?: boolean; filter: string[]; json?: boolean }) => {
      const filters = parseLsFilters(o.filter);
      await withCluster(storeOption(), async (cluster) => {
        const [all, tasks] = await Promise.all([cluster.listServices(), cluster.listTasks()]);
        const services = selectServices(all, filters);
        if (o.json) printJson(services);
        else if (o.quiet) for (const s of services) console.log(s.name);
        else console.log(renderServiceTable(services, tasks));
      });
    });
}
