import { MeshError } from './errors.js';
import { INGRESS_CHAIN, HOST_COMMENT } from './iptables-render.js';
import type { IptablesTable } from './iptables-ruleset.js';
import { hasComment, type IptablesState } from './iptables-save-parse.js';

/** The agent flag that lets meshnet take DOCKER-INGRESS over from whoever holds it. */
export const DOCKER_INGRESS_TAKEOVER_FLAG = '--allow-docker-ingress-takeover';

/** A rule in, or jumping to, DOCKER-INGRESS that this meshnet would not have written. */
export interface ForeignIngressRule {
  table: IptablesTable;
  chain: string;
  rule: string;
}

/** What meshnet's own DOCKER-INGRESS rules name on this host (HostPlan: gwbridge.name, sboxAddress). */
export interface MeshIngressIdentity {
  gwbridge: string;
  sboxAddress: string;
}

/** DOCKER-INGRESS holds rules meshnet did not write: most likely Docker Swarm runs on this host. */
export class DockerIngressInUseError extends MeshError {
  constructor(readonly rules: readonly ForeignIngressRule[]) {
    const first = rules[0]!;
    super(
      'MESH_DOCKER_INGRESS_IN_USE',
      `the host's ${INGRESS_CHAIN} chains hold ${rules.length} rule(s) meshnet did not write ` +
        `(first: ${first.table} ${first.chain}: ${first.rule}); this host looks like a Docker Swarm node, and meshnet ` +
        `flushes ${INGRESS_CHAIN}, which would cut Docker's published ports off. Run meshnet on a host that is not in a ` +
        `swarm (docker swarm leave), or, if these rules are stale or you mean to replace Docker's routing mesh, start ` +
        `the agent with ${DOCKER_INGRESS_TAKEOVER_FLAG}`,
    );
  }
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// The shapes hostRuleSet (iptables-render.ts) writes into DOCKER-INGRESS; anything else is someone else's.
function ownShapes(mine: MeshIngressIdentity): Record<'nat' | 'filter', RegExp[]> {
  const sbox = escape(mine.sboxAddress);
  const gw = escape(mine.gwbridge);
  const proto = '(tcp|udp) -m \\1';
  return {
    nat: [/^-j RETURN$/, new RegExp(`^-p ${proto} --dport (\\d+) -j DNAT --to-destination ${sbox}:\\2$`)],
    filter: [
      /^-j RETURN$/,
      new RegExp(`^-d [0-9.]+/32 -o ${gw} -p ${proto} --dport \\d+ -m conntrack --ctstate DNAT -j ACCEPT$`),
      new RegExp(`^-s [0-9.]+/32 -i ${gw} -p (tcp|udp) -m conntrack --ctstate RELATED,ESTABLISHED -m \\1 --sport \\d+ -j ACCEPT$`),
    ],
  };
}

/**
 * Pure: the rules of the host's nat and filter DOCKER-INGRESS chains (as iptables-save state)
 * that meshnet did not write, and the jumps to those chains that do not carry meshnet's
 * comment. Docker Swarm always jumps to its chain without a comment, so a swarm node with no
 * published port is found too. Empty: the chains are absent or meshnet's own.
 */
export function foreignDockerIngressRules(state: IptablesState, mine: MeshIngressIdentity): ForeignIngressRule[] {
  const shapes = ownShapes(mine);
  const found: ForeignIngressRule[] = [];
  for (const table of ['nat', 'filter'] as const) {
    const chains = state.get(table);
    if (!chains) continue;
    for (const rule of chains.get(INGRESS_CHAIN) ?? []) {
      if (!shapes[table].some((re) => re.test(rule))) found.push({ table, chain: INGRESS_CHAIN, rule });
    }
    for (const [chain, rules] of chains) {
      if (chain === INGRESS_CHAIN) continue;
      for (const rule of rules) {
        if (/(^| )-[jg] DOCKER-INGRESS( |$)/.test(rule) && !hasComment(rule, HOST_COMMENT)) found.push({ table, chain, rule });
      }
    }
  }
  return found;
}

/**
 * Decides whether the agent may take DOCKER-INGRESS over: throws DockerIngressInUseError when
 * the chains hold foreign rules and `allowTakeover` (the agent's --allow-docker-ingress-takeover)
 * is false; otherwise returns the foreign rules it will flush, for the agent to log.
 */
export function checkDockerIngressTakeover(state: IptablesState, mine: MeshIngressIdentity, allowTakeover: boolean): ForeignIngressRule[] {
  const foreign = foreignDockerIngressRules(state, mine);
  if (foreign.length > 0 && !allowTakeover) throw new DockerIngressInUseError(foreign);
  return foreign;
}
