import { z } from 'zod';
import { InvalidSpecError } from './model-errors.js';

// Network aliases of a service (Docker's `--network name=appnet,alias=api-v2` and `--network-alias`): extra DNS
// names that answer, on that network only, what the service's own name answers there. Stored per network as the
// optional ServiceRecord field `aliases`; absent means none, as records written by older agents have it.

/** One DNS label (RFC 1123): lowercase, as service names are, so a name and an alias compare as plain strings. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * Longest alias: the resolver also answers `tasks.<alias>`, `<alias>.<network>` and `_<port>._<proto>.<alias>.<network>`,
 * which must stay within DNS's 253 characters with a 40-character network name.
 */
export const MAX_ALIAS_LENGTH = 200;
/** The rule an alias follows, for messages. */
export const ALIAS_RULE = `a DNS name of at most ${MAX_ALIAS_LENGTH} characters: labels of lowercase letters, digits and "-" (1-63 characters, not starting or ending with "-") joined by ".", the first label not "tasks"`;

/** Why `alias` is not a valid network alias, or undefined when it is. */
export function aliasProblem(alias: string): string | undefined {
  const labels = alias.split('.');
  // `tasks.<x>` is the resolver's name for x's task addresses: an alias there would shadow it.
  const ok = alias.length <= MAX_ALIAS_LENGTH && labels.every((l) => LABEL.test(l)) && labels[0] !== 'tasks';
  return ok ? undefined : `invalid network alias ${JSON.stringify(alias)}: use ${ALIAS_RULE}`;
}

const aliasSchema = z.string().refine((a) => aliasProblem(a) === undefined, `network aliases must be ${ALIAS_RULE}`);

/** Aliases by network name, as stored and as submitted (validated on every read and write). */
export const AliasesSchema = z.record(z.string(), z.array(aliasSchema));
/** Aliases by network name. */
export type Aliases = z.infer<typeof AliasesSchema>;

/** What the alias checks need of a service (a spec or a stored record). */
export interface AliasHolder {
  name: string;
  networks: readonly string[];
  aliases?: Aliases | undefined;
}

/**
 * The aliases to store for a service: only networks it lists, each list without repeats and without the service's
 * own name (it answers anyway); undefined when none are left, so a service without aliases stores no field.
 */
export function normalizeAliases(service: AliasHolder): Aliases | undefined {
  const out: Aliases = {};
  for (const network of service.networks) {
    const list = [...new Set(service.aliases?.[network] ?? [])].filter((a) => a !== service.name);
    if (list.length > 0) out[network] = list;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Why a service's aliases cannot be stored as given (a network it does not list), or undefined. */
export function aliasSpecProblem(service: AliasHolder): string | undefined {
  for (const network of Object.keys(service.aliases ?? {})) {
    if (!service.networks.includes(network)) {
      return `service ${service.name}: aliases are given for network ${JSON.stringify(network)}, which the service is not attached to; attach it with --network ${network}`;
    }
  }
  return undefined;
}

/** Throws InvalidSpecError when `service` gives aliases for a network it does not list. */
export function assertAliasSpec(service: AliasHolder): void {
  const problem = aliasSpecProblem(service);
  if (problem) throw new InvalidSpecError(problem);
}

/** The DNS names a service answers on `network`: its name and its aliases there. */
function namesOn(service: AliasHolder, network: string): string[] {
  return service.networks.includes(network) ? [service.name, ...(service.aliases?.[network] ?? [])] : [];
}

/**
 * Why `service` would make a name ambiguous on one of its networks: one of its names there (its own or an alias)
 * is the name or an alias of another service on the same network. Undefined when every name is its own.
 */
export function aliasConflict(service: AliasHolder, others: readonly AliasHolder[]): string | undefined {
  for (const network of service.networks) {
    const mine = namesOn(service, network);
    for (const other of others) {
      if (other.name === service.name) continue;
      const theirs = new Set(namesOn(other, network));
      const clash = mine.find((n) => theirs.has(n));
      if (clash === undefined) continue;
      const what = clash === other.name ? 'the name of service' : 'an alias of service';
      const own = clash === service.name ? 'its name' : `alias ${JSON.stringify(clash)}`;
      return `service ${service.name}: ${own} on network ${network} is already ${what} ${other.name} there, so DNS could not tell them apart; choose another alias (see meshnet service inspect ${other.name})`;
    }
  }
  return undefined;
}

/** The `aliases` field of a record built from `service` (normalised), or nothing when it has none. */
export function aliasFields(service: AliasHolder): { aliases?: Aliases } {
  const aliases = normalizeAliases(service);
  return aliases ? { aliases } : {};
}

/** The `aliases` field after an update that gives `aliases` (replacing every list) or not (the stored ones stay). */
export function aliasesAfterUpdate(base: AliasHolder, aliases: Aliases | undefined): { aliases?: Aliases } {
  if (aliases === undefined) return aliasFields(base);
  assertAliasSpec({ ...base, aliases });
  return aliasFields({ ...base, aliases });
}
