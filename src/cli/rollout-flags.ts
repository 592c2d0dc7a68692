import { Option, type Command } from 'commander';
import { CliError, EXIT } from './cli-context.js';
import { parseDuration } from './duration-flag.js';
import { FAILURE_ACTIONS, UPDATE_ORDERS, type UpdateConfigSpec } from '../model/rollout-records.js';

// Docker's --update-* and --rollback-* flags, shared by `service create` and `service update`. They have no
// commander defaults: an absent flag keeps what the service stores (Docker's defaults when nothing is).

type Prefix = 'update' | 'rollback';
const camel = (prefix: Prefix, rest: string): string => prefix + rest.split('-').filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');

/** Adds the --update-* and --rollback-* flags to `cmd`. */
export function addRolloutFlags(cmd: Command): Command {
  for (const prefix of ['update', 'rollback'] as const) {
    const what = prefix === 'update' ? 'update' : 'rollback';
    const during = prefix === 'update' ? 'an update' : 'a rollback';
    cmd
      .option(`--${prefix}-parallelism <n>`, `tasks replaced at once during ${during}, 0 for all (default 1)`)
      .option(`--${prefix}-delay <duration>`, `wait between ${what} batches, e.g. 10s (default 0s)`)
      .addOption(
        new Option(`--${prefix}-order <order>`, `stop-first: the old task drains before its replacement starts (default); start-first: the old one drains once its replacement is ready`).choices([
          ...UPDATE_ORDERS,
        ]),
      )
      .addOption(
        new Option(`--${prefix}-failure-action <action>`, `what a failed ${what} does (default pause)`).choices(prefix === 'update' ? [...FAILURE_ACTIONS] : ['pause', 'continue']),
      )
      .option(`--${prefix}-monitor <duration>`, `how long a new task has to become ready before it counts as failed (default 5s)`)
      .option(`--${prefix}-max-failure-ratio <ratio>`, `failed tasks over replicas tolerated, 0 to 1 (default 0)`);
  }
  return cmd;
}

function whole(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > 10_000) throw new CliError(`invalid ${flag} ${JSON.stringify(text)}: a whole number from 0 to 10000 (0: all at once)`, EXIT.usage);
  return n;
}

function ratio(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new CliError(`invalid ${flag} ${JSON.stringify(text)}: a fraction from 0 to 1, e.g. 0.2`, EXIT.usage);
  return n;
}

function configFrom(prefix: Prefix, o: Record<string, unknown>): UpdateConfigSpec | undefined {
  const get = (rest: string) => o[camel(prefix, rest)] as string | undefined;
  const flag = (rest: string) => `--${prefix}-${rest}`;
  const config: UpdateConfigSpec = {};
  if (get('-parallelism') !== undefined) config.parallelism = whole(flag('parallelism'), get('-parallelism')!);
  if (get('-delay') !== undefined) config.delayMs = parseDuration(flag('delay'), get('-delay')!);
  if (get('-order') !== undefined) config.order = get('-order') as UpdateConfigSpec['order'];
  if (get('-failure-action') !== undefined) config.failureAction = get('-failure-action') as UpdateConfigSpec['failureAction'];
  if (get('-monitor') !== undefined) config.monitorMs = parseDuration(flag('monitor'), get('-monitor')!);
  if (get('-max-failure-ratio') !== undefined) config.maxFailureRatio = ratio(flag('max-failure-ratio'), get('-max-failure-ratio')!);
  return Object.keys(config).length > 0 ? config : undefined;
}

/** The update and rollback configs the flags give (each absent when none of its flags is). */
export function rolloutConfigsFromFlags(o: Record<string, unknown>): { updateConfig?: UpdateConfigSpec; rollbackConfig?: UpdateConfigSpec } {
  const updateConfig = configFrom('update', o);
  const rollbackConfig = configFrom('rollback', o);
  return { ...(updateConfig ? { updateConfig } : {}), ...(rollbackConfig ? { rollbackConfig } : {}) };
}
