import { commentMatch } from './iptables-match.js';
import type { IptablesRuleSet } from './iptables-ruleset.js';

/** Marks the guard's rules in the host's built-in chains. */
export const LOCALNET_COMMENT = 'meshnet-localnet';
/** The guard's chain in mangle (jumped from PREROUTING) and in filter (from INPUT and OUTPUT, as kube-proxy's KUBE-FIREWALL). */
export const LOCALNET_CHAIN = 'MESHNET-LOCALNET';

// Both tables are owned even when empty, so removing the guard reads and cleans both.
const OWNED: IptablesRuleSet['ownedChains'] = [
  { table: 'filter', name: LOCALNET_CHAIN },
  { table: 'mangle', name: LOCALNET_CHAIN },
];

const LOOPBACK = '127.0.0.0/8';

/**
 * The host's guard for `route_localnet=1` on the gwbridge (kube-proxy's CVE-2020-8558 fix):
 * packets to 127.0.0.0/8 that do not come from 127.0.0.0/8 are dropped.
 *
 * - filter INPUT and OUTPUT: kube-proxy's rule, word for word. It stops a sandbox on the
 *   gwbridge (where the kernel now routes 127/8) from reaching services bound to the host's
 *   loopback. Replies and DNATed connections are exempt, so `curl localhost:P` keeps working.
 * - mangle PREROUTING: a packet from outside addressed to 127/8 is dropped before nat
 *   PREROUTING sees it; otherwise DOCKER-INGRESS (`--dst-type LOCAL` matches 127.0.0.1)
 *   would DNAT it to the ingress sandbox, and filter would only see the new address.
 *   Loopback traffic (`-i lo`) never takes this path from outside.
 */
export function localnetGuardRuleSet(): IptablesRuleSet {
  const jump = `${commentMatch(LOCALNET_COMMENT)} -j ${LOCALNET_CHAIN}`;
  return {
    comment: LOCALNET_COMMENT,
    ownedChains: OWNED,
    chains: [
      { table: 'mangle', name: LOCALNET_CHAIN, rules: [`! -s ${LOOPBACK} -d ${LOOPBACK} ! -i lo -j DROP`] },
      {
        table: 'filter',
        name: LOCALNET_CHAIN,
        rules: [`! -s ${LOOPBACK} -d ${LOOPBACK} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`],
      },
    ],
    builtins: [
      { table: 'mangle', chain: 'PREROUTING', rule: jump },
      { table: 'filter', chain: 'INPUT', rule: jump },
      { table: 'filter', chain: 'OUTPUT', rule: jump },
    ],
  };
}

/** The guard's rule set with nothing in it: applying it removes the guard (the node left the mesh). */
export function emptyLocalnetGuardRuleSet(): IptablesRuleSet {
  return { comment: LOCALNET_COMMENT, ownedChains: OWNED, chains: [], builtins: [] };
}
