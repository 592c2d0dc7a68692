import { renderRestore } from '../mesh/iptables-render.js';
import type { IptablesRuleSet } from '../mesh/iptables-ruleset.js';
import { InvalidDnsInputError } from './errors.js';
import { RESOLVER_ADDRESS, RESOLVER_PORT } from './namespace-server.js';

/** Docker's chain names, so an operator who knows Docker finds the rules where they expect. */
export const DNS_OUTPUT_CHAIN = 'DOCKER_OUTPUT';
export const DNS_POSTROUTING_CHAIN = 'DOCKER_POSTROUTING';
/** Marks the resolver's jumps in the task's built-in chains (the mesh's rules there carry their own). */
export const DNS_NAT_COMMENT = 'meshnet-dns';

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535 || port === RESOLVER_PORT) {
    throw new InvalidDnsInputError(
      `resolver port ${port} must be an integer from 1 to 65535 other than 53 (a resolver on :53 needs no NAT rules)`,
    );
  }
}

/**
 * The nat rules a task namespace needs when its resolver listens on 127.0.0.11:`port`:
 * queries to 127.0.0.11:53 are DNATed to the port (UDP and TCP), and the resolver's packets
 * leave with source port 53, as Docker writes them (libnetwork resolver_unix.go). Rules are
 * in iptables-save's own spelling, so the mesh's IptablesWriter (apply with this set, keyed by
 * its comment) reads them back as equal and rewrites nothing on an unchanged port.
 */
export function resolverNatRuleSet(port: number): IptablesRuleSet {
  checkPort(port);
  const resolver = `${RESOLVER_ADDRESS}/32`;
  const c = `-m comment --comment ${DNS_NAT_COMMENT}`;
  return {
    comment: DNS_NAT_COMMENT,
    ownedChains: [
      { table: 'nat', name: DNS_OUTPUT_CHAIN },
      { table: 'nat', name: DNS_POSTROUTING_CHAIN },
    ],
    chains: [
      {
        table: 'nat',
        name: DNS_OUTPUT_CHAIN,
        rules: ['udp', 'tcp'].map(
          (p) => `-d ${resolver} -p ${p} -m ${p} --dport ${RESOLVER_PORT} -j DNAT --to-destination ${RESOLVER_ADDRESS}:${port}`,
        ),
      },
      {
        table: 'nat',
        name: DNS_POSTROUTING_CHAIN,
        rules: ['udp', 'tcp'].map((p) => `-s ${resolver} -p ${p} -m ${p} --sport ${port} -j SNAT --to-source :${RESOLVER_PORT}`),
      },
    ],
    builtins: [
      { table: 'nat', chain: 'OUTPUT', rule: `-d ${resolver} ${c} -j ${DNS_OUTPUT_CHAIN}` },
      { table: 'nat', chain: 'POSTROUTING', rule: `-d ${resolver} ${c} -j ${DNS_POSTROUTING_CHAIN}` },
    ],
  };
}

/**
 * The `iptables-restore --noflush` text that puts resolverNatRuleSet(port) into a namespace
 * that has none of it yet (a new task). To change the port later, or to repair, apply the rule
 * set through the mesh's IptablesWriter, which diffs against what the namespace holds.
 */
export function resolverNatRules(port: number): string {
  // Rendered against an empty namespace, the text is never null.
  return renderRestore(resolverNatRuleSet(port), new Map())!;
}
