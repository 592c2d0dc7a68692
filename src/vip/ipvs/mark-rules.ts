/**
 * The mangle-table rules that mark packets for IPVS firewall-mark services, as a rule set for
 * the mesh's IptablesWriter (the namespace's one writer per family: iptables for v4 services,
 * ip6tables for v6 ones), and parsed back from what the writer reads.
 */
import type { IptablesRuleSet } from '../../mesh/iptables-ruleset.js';
import type { IptablesState } from '../../mesh/iptables-save-parse.js';
import type { L4Protocol, LbTable } from '../lb-table.js';
import { canonicalAddress, type IpvsFamily } from './codec.js';
import { everyPortMarks, serviceFamily } from './ipvs-plan.js';

export const MARK_CHAIN = 'MESHNET-IPVS-MARK';
/** Built-in chains that jump to MARK_CHAIN: PREROUTING for traffic arriving, OUTPUT for local clients. */
export const MARK_HOOKS = ['PREROUTING', 'OUTPUT'] as const;
/** Marks the jumps to MARK_CHAIN in built-in chains, so the writer finds and prunes only its own. */
export const MARK_COMMENT = 'meshnet-ipvs';
const COMMENT_PREFIX = 'meshnet:';

/** One marking rule: packets to (address,) protocol, port get `mark`; `id` names the service. */
export interface MarkRule {
  id: string;
  mark: number;
  protocol: L4Protocol;
  port: number;
  address?: string;
}

/** The marking rules a table needs (fwmark frontends only), in table order, split by the family of their service. */
export function markRulesByFamily(table: LbTable): Record<IpvsFamily, MarkRule[]> {
  const out: Record<IpvsFamily, MarkRule[]> = { inet: [], inet6: [] };
  const marks = everyPortMarks(table);
  for (const vs of table.services) {
    const fe = vs.frontend;
    const family = serviceFamily(vs);
    // ip6tables-save prints addresses in their canonical form: written so, an unchanged rule reads back equal.
    const address = fe.address !== undefined && family === 'inet6' ? canonicalAddress('inet6', fe.address) : fe.address;
    if (fe.kind === 'vip' && fe.port === 0) {
      out[family].push({ id: vs.id, mark: marks(fe.address, fe.protocol), protocol: fe.protocol, port: 0, address: address! });
      continue;
    }
    if (fe.kind !== 'fwmark') continue;
    const r: MarkRule = { id: vs.id, mark: fe.mark, protocol: fe.protocol, port: fe.port };
    if (address !== undefined) r.address = address;
    out[family].push(r);
  }
  return out;
}

/** The marking rules of a table's v4 services (the iptables side), in table order. */
export function markRulesFromTable(table: LbTable): MarkRule[] {
  return markRulesByFamily(table).inet;
}

// Written exactly as iptables-save prints it (comments with ':' come back quoted), so read-back compares equal.
function ruleText(r: MarkRule): string {
  const dst = r.address === undefined ? '' : `-d ${r.address}${r.address.includes(':') ? '/128' : '/32'} `;
  // Port 0: every port of the address (an every-port VIP).
  const port = r.port === 0 ? '' : ` -m ${r.protocol} --dport ${r.port}`;
  return `${dst}-p ${r.protocol}${port} -m comment --comment "${COMMENT_PREFIX}${r.id}" -j MARK --set-xmark 0x${r.mark.toString(16)}/0xffffffff`;
}

/**
 * The mark chain holding exactly `rules`, hooked into PREROUTING and OUTPUT; with no rules, no
 * chain and no hooks. The writer declares (flushes) and refills the chain in one transaction,
 * so packets never see a half-written chain.
 */
export function markRuleSet(rules: readonly MarkRule[]): IptablesRuleSet {
  const hook = `-m comment --comment ${MARK_COMMENT} -j ${MARK_CHAIN}`;
  return {
    comment: MARK_COMMENT,
    ownedChains: [{ table: 'mangle', name: MARK_CHAIN }],
    chains: rules.length > 0 ? [{ table: 'mangle', name: MARK_CHAIN, rules: rules.map(ruleText) }] : [],
    builtins: rules.length > 0 ? MARK_HOOKS.map((chain) => ({ table: 'mangle' as const, chain, rule: hook })) : [],
  };
}

/** Split an iptables-save rule into words, honouring double quotes. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

/** Our marking rules in what the writer read of the mangle table (rules of others are skipped). */
export function markRulesFromState(state: IptablesState): MarkRule[] {
  const out: MarkRule[] = [];
  for (const line of state.get('mangle')?.get(MARK_CHAIN) ?? []) {
    const w = words(line);
    const opt = (name: string): string | undefined => {
      const i = w.indexOf(name);
      return i >= 0 ? w[i + 1] : undefined;
    };
    const comment = opt('--comment');
    const xmark = opt('--set-xmark') ?? opt('--set-mark');
    const proto = opt('-p');
    const dport = opt('--dport');
    if (!comment?.startsWith(COMMENT_PREFIX) || !xmark || (proto !== 'tcp' && proto !== 'udp')) continue;
    const rule: MarkRule = { id: comment.slice(COMMENT_PREFIX.length), mark: parseInt(xmark.split('/')[0]!, 16), protocol: proto, port: dport ? Number(dport) : 0 };
    const d = opt('-d');
    if (d) rule.address = d.replace(/\/(32|128)$/, '');
    out.push(rule);
  }
  return out;
}
