import { CliError, EXIT } from './cli-context.js';
import { nameProblem } from '../model/records.js';
import { aliasProblem, type Aliases } from '../model/service-aliases.js';

/** The accepted forms of --network, for messages. */
const NETWORK_FORMS = 'use NETWORK or Docker\'s long form name=NETWORK[,alias=ALIAS...] (e.g. name=appnet,alias=api-v2)';
/** Keys of Docker's long --network form that meshnet does not implement (addresses come from meshnet's IPAM). */
const UNSUPPORTED_KEYS = new Set(['driver-opt', 'ip', 'ip6', 'link-local-ip', 'mac-address', 'gw-priority']);

/** A --network value that cannot be understood; exits 2 with the accepted forms. */
export class NetworkFlagError extends CliError {
  constructor(value: string, why: string) {
    super(`invalid --network ${JSON.stringify(value)}: ${why}; ${NETWORK_FORMS}`, EXIT.usage);
    this.name = 'NetworkFlagError';
  }
}

/** Parses one --network value: `appnet`, or `name=appnet,alias=api-v2[,alias=more]` (Docker's long form). */
export function parseNetworkFlag(text: string): { network: string; aliases: string[] } {
  const parts = text.split(',').map((p) => p.trim());
  if (!text.includes('=')) {
    if (parts.length !== 1) throw new NetworkFlagError(text, 'a plain network name has no ","');
    return { network: checkedNetwork(text, text), aliases: [] };
  }
  let network: string | undefined;
  const aliases: string[] = [];
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new NetworkFlagError(text, `${JSON.stringify(part)} is not KEY=VALUE${nameProblem('network', part) === undefined ? ` (write name=${part})` : ''}`);
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key === 'name') {
      if (network !== undefined) throw new NetworkFlagError(text, 'name is given twice');
      network = checkedNetwork(text, value);
    } else if (key === 'alias') {
      const problem = aliasProblem(value);
      if (problem) throw new NetworkFlagError(text, problem);
      if (!aliases.includes(value)) aliases.push(value);
    } else if (UNSUPPORTED_KEYS.has(key)) {
      throw new NetworkFlagError(text, `${key} is not supported: meshnet allocates task addresses itself`);
    } else {
      throw new NetworkFlagError(text, `unknown key ${JSON.stringify(key)} (known: name, alias)`);
    }
  }
  if (network === undefined) throw new NetworkFlagError(text, 'the long form needs name=NETWORK');
  return { network, aliases };
}

function checkedNetwork(text: string, name: string): string {
  const problem = nameProblem('network', name);
  if (problem) throw new NetworkFlagError(text, problem);
  return name;
}

/**
 * The networks and aliases of `service create` from its --network values and --network-alias values (which apply
 * to every network given with --network, never to ingress, as in Docker). `aliases` is absent when there are none.
 */
export function networkAttachments(networkFlags: readonly string[], aliasFlags: readonly string[]): { networks: string[]; aliases?: Aliases } {
  for (const alias of aliasFlags) {
    const problem = aliasProblem(alias);
    if (problem) throw new CliError(`invalid --network-alias: ${problem}`, EXIT.usage);
  }
  if (aliasFlags.length > 0 && networkFlags.length === 0) {
    throw new CliError('--network-alias names the service on the networks given with --network (not on ingress): give --network too', EXIT.usage);
  }
  const networks: string[] = [];
  const aliases: Aliases = {};
  for (const flag of networkFlags) {
    const parsed = parseNetworkFlag(flag);
    if (networks.includes(parsed.network)) throw new NetworkFlagError(flag, `network ${parsed.network} is given twice`);
    networks.push(parsed.network);
    const list = [...new Set([...parsed.aliases, ...aliasFlags])];
    if (list.length > 0) aliases[parsed.network] = list;
  }
  return Object.keys(aliases).length > 0 ? { networks, aliases } : { networks };
}
