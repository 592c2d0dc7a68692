/**
 * The mangle-table rules that mark packets for IPVS firewall-mark services, rendered as an
 * `iptables-restore --noflush` fragment (one atomic transaction) and parsed back from
 * `iptables-save -t mangle`.
 */
import type { L4Protocol, LbTable } from '../lb-table.js';
import { everyPortMark } from './ipvs-plan.js';

export const MARK_CHAIN = 'MESHNET-IPVS-MARK';
/** Built-in chains that jump to MARK_CHAIN: PREROUTING for traffic arriving, OUTPUT for local clients. */
export const MARK_HOOKS = ['PREROUTING', 'OUTPUT'] as const;
const COMMENT_PREFIX = 'meshnet:';

/** One marking rule: packets to (address,) protocol, port get `mark`; `id` names the service. */
export interface MarkRule {
  id: string;
  mark: number;
  protocol: L4Protocol;
  port: number;
  address?: string;
}

/** What `iptables-save -t mangle` shows of ours. */
export interface MarkChainState {
  chainExists: boolean;
  hooked: Record<(typeof MARK_HOOKS)[number], boolean>;
  rules: MarkRule[];
}

/** The marking rules a table needs (fwmark frontends only), in table order. */
export function markRulesFromTable(table: LbTable): MarkRule[] {
  const out: MarkRule[] = [];
  for (const vs of table.services) {
    const fe = vs.frontend;
    if (fe.kind === 'vip' && fe.port === 0) {
      out.push({ id: vs.id, mark: everyPortMark(fe.address, fe.protocol), protocol: fe.protocol, port: 0, address: fe.address });
      continue;
    }
    if (fe.kind !== 'fwmark') continue;
    const r: MarkRule = { id: vs.id, mark: fe.mark, protocol: fe.protocol, port: fe.port };
    if (fe.address !== undefined) r.address = fe.address;
    out.push(r);
  }
  return out;
}

function ruleLine(r: MarkRule): string {
  const dst = r.address === undefined ? '' : ` -d ${r.address}${r.address.includes(':') ? '/128' : '/32'}`;
  // Port 0: every port of the address (an every-port VIP).
  const port = r.port === 0 ? '' : ` -m ${r.protocol} --dport ${r.port}`;
  return `-A ${MARK_CHAIN}${dst} -p ${r.protocol}${port} -m comment --comment "${COMMENT_PREFIX}${r.id}" -j MARK --set-xmark 0x${r.mark.toString(16)}/0xffffffff`;
}

/**
 * An `iptables-restore --noflush` input that makes the chain hold exactly `rules` and hooks
 * it where it is not hooked yet. Declaring the chain flushes it in the same transaction,
 * so packets never see a half-written chain.
 */
export function renderMarkRules(rules: MarkRule[], state: Pick<MarkChainState, 'hooked'>): string {
  const lines = ['*mangle', `:${MARK_CHAIN} - [0:0]`];
  for (const r of rules) lines.push(ruleLine(r));
  for (const hook of MARK_HOOKS) if (!state.hooked[hook]) lines.push(`-I ${hook} 1 -j ${MARK_CHAIN}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** An `iptables-restore --noflush` input that unhooks and deletes the chain. */
export function renderMarkChainRemoval(state: MarkChainState): string {
  if (!state.chainExists) return '';
  const lines = ['*mangle'];
  for (const hook of MARK_HOOKS) if (state.hooked[hook]) lines.push(`-D ${hook} -j ${MARK_CHAIN}`);
  lines.push(`-F ${MARK_CHAIN}`, `-X ${MARK_CHAIN}`, 'COMMIT', '');
  return lines.join('\n');
}

/** Split an iptables-save line into words, honouring double quotes. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

/** Our chain, hooks and rules as `iptables-save -t mangle` prints them. */
export function parseMarkChain(save: string): MarkChainState {
  const state: MarkChainState = { chainExists: false, hooked: { PREROUTING: false, OUTPUT: false }, rules: [] };
  for (const line of save.split('\n')) {
    if (line.startsWith(`:${MARK_CHAIN} `)) state.chainExists = true;
    if (!line.startsWith('-A ')) continue;
    const w = words(line);
    const chain = w[1];
    const target = w[w.indexOf('-j') + 1];
    if ((chain === 'PREROUTING' || chain === 'OUTPUT') && target === MARK_CHAIN && w.length === 4) state.hooked[chain] = true;
    if (chain !== MARK_CHAIN) continue;
    const opt = (name: string) => {
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
    state.rules.push(rule);
  }
  return state;
}
