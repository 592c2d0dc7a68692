import { CliError, EXIT } from './cli-context.js';
import { looksLikeCidr6 } from '../model/ipv6.js';

// `network create` subnet flags as Docker takes them: --subnet may be given twice, once v4 and once v6
// (`--ipv6 --subnet 10.0.9.0/24 --subnet fd00:9::/64`); --subnet6 names the v6 one explicitly.

/** The network spec fields the subnet flags give. */
export interface SubnetChoice {
  subnet?: string;
  subnet6?: string;
  ipv6?: boolean;
}

/** Sorts --subnet values into v4 and v6; bad combinations are usage errors (exit 2) naming the flag. */
export function parseSubnetFlags(o: { subnet: string[]; subnet6?: string; ipv6?: boolean }): SubnetChoice {
  const v4 = o.subnet.filter((s) => !looksLikeCidr6(s));
  const v6 = [...o.subnet.filter(looksLikeCidr6), ...(o.subnet6 !== undefined ? [o.subnet6] : [])];
  if (v4.length > 1) throw new CliError(`--subnet: give at most one IPv4 subnet (got ${v4.join(', ')})`, EXIT.usage);
  if (v6.length > 1) throw new CliError(`--subnet/--subnet6: give at most one IPv6 subnet (got ${v6.join(', ')})`, EXIT.usage);
  if (v6.length === 1 && !o.ipv6) throw new CliError(`--subnet ${v6[0]} is IPv6: add --ipv6 to make the network dual stack`, EXIT.usage);
  return { ...(v4[0] !== undefined ? { subnet: v4[0] } : {}), ...(v6[0] !== undefined ? { subnet6: v6[0] } : {}), ...(o.ipv6 ? { ipv6: true } : {}) };
}
