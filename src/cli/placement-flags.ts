import type { Command } from 'commander';
import { CliError, EXIT } from './cli-context.js';
import { canonicalConstraint, constraintProblem } from '../model/placement-constraints.js';
import { type PlacementUpdate, type ServiceMode } from '../model/service-placement.js';

// The values of Docker's --mode, --constraint, --replicas-max-per-node (create) and --constraint-add/-rm (update),
// checked at the edge so a mistake names the flag and what it accepts (exit 2).

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** Adds `service update`'s placement flags: --constraint-add, --constraint-rm, --replicas-max-per-node. */
export function addPlacementUpdateFlags(cmd: Command): Command {
  return cmd
    .option('--constraint-add <expr>', 'add a placement constraint (same forms as create --constraint; repeat); tasks that no longer fit move', collect, [] as string[])
    .option('--constraint-rm <expr>', 'remove a placement constraint (repeat)', collect, [] as string[])
    .option('--replicas-max-per-node <n>', 'at most this many tasks on one node (0: unlimited)');
}

/** The mode and placement of `service create`'s flags; `replicasGiven`: whether --replicas was on the command line. */
export function placementFromCreateFlags(o: Record<string, unknown>, replicasGiven: boolean): { mode?: ServiceMode; placement?: { constraints: string[]; maxReplicasPerNode?: number } } {
  const mode = o['mode'] as ServiceMode;
  const constraints = constraintList('--constraint', o['constraint'] as string[]);
  const maxGiven = o['replicasMaxPerNode'] !== '0';
  const max = maxPerNode(o['replicasMaxPerNode'] as string);
  if (mode === 'global' && replicasGiven) throw new CliError('--replicas cannot be used with --mode global: a global service runs one task on every eligible node', EXIT.usage);
  if (mode === 'global' && maxGiven) throw new CliError('--replicas-max-per-node cannot be used with --mode global: a global service runs one task per node', EXIT.usage);
  return {
    ...(mode === 'global' ? { mode } : {}),
    ...(constraints.length > 0 || max > 0 ? { placement: { constraints, ...(max > 0 ? { maxReplicasPerNode: max } : {}) } } : {}),
  };
}

/** The placement change of `service update`'s flags, or undefined when none was given. */
export function placementFromUpdateFlags(o: Record<string, unknown>): PlacementUpdate | undefined {
  const add = constraintList('--constraint-add', o['constraintAdd'] as string[]);
  const rm = constraintList('--constraint-rm', o['constraintRm'] as string[]);
  const raw = o['replicasMaxPerNode'] as string | undefined;
  if (add.length === 0 && rm.length === 0 && raw === undefined) return undefined;
  return {
    ...(add.length ? { constraintAdd: add } : {}),
    ...(rm.length ? { constraintRm: rm } : {}),
    ...(raw !== undefined ? { maxReplicasPerNode: maxPerNode(raw) } : {}),
  };
}

function constraintList(flag: string, values: string[]): string[] {
  return values.map((v) => {
    const problem = constraintProblem(v);
    if (problem) throw new CliError(`${flag}: ${problem}`, EXIT.usage);
    return canonicalConstraint(v);
  });
}

function maxPerNode(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 10_000) throw new CliError(`invalid --replicas-max-per-node ${JSON.stringify(value)}: a whole number from 0 (unlimited) to 10000`, EXIT.usage);
  return n;
}
