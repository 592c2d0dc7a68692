import ipaddr from 'ipaddr.js';
import { IP6_TABLE } from './ip6-table.js';

// A packet tracer for the v6 table: it reads the rendered script (not the LbTable it came from) and says what the
// kernel would do with a new connection, as packet-tracer.ts does for the v4 table.

/** A new v6 connection's first packet. */
export interface Ip6Packet {
  saddr: string;
  daddr: string;
  protocol: 'tcp' | 'udp';
  dport: number;
  /** Whether daddr is local to the namespace (published ports match on local addresses). */
  local?: boolean;
}

/** What the table does with it: DNAT to one of `targets`, reject, or nothing of meshnet's. */
export type Ip6Verdict = { kind: 'dnat'; targets: string[] } | { kind: 'reject' } | { kind: 'accept' };

const RULE = /^(?:ip6 daddr (\S+)|fib daddr type local) meta l4proto (tcp|udp)(?: th dport (\d+))? (.*)$/;

function sameAddress(a: string, b: string): boolean {
  return ipaddr.IPv6.parse(a).toNormalizedString() === ipaddr.IPv6.parse(b).toNormalizedString();
}

/** The rules of one chain of the rendered script. */
function chainRules(script: string, chain: string): string[] {
  const at = script.indexOf(`\tchain ${chain} {\n`);
  if (at < 0) return [];
  const lines = script.slice(at).split('\n').slice(1);
  return lines.slice(0, lines.findIndex((l) => l.trim() === '}')).map((l) => l.trim());
}

/** The DNAT targets an affinity service chain can reach (a known client's backend is one of them). */
function gotoTargets(script: string, chain: string): string[] {
  const backends = chainRules(script, chain).flatMap((r) => [...r.matchAll(/goto (b\d+_\d+)/g)].map((m) => m[1]!));
  return backends.flatMap((b) => chainRules(script, b).filter((r) => r.startsWith('dnat to ')).map((r) => r.slice('dnat to '.length)));
}

/** Evaluates `packet` against the dispatch chain of a rendered v6 table script. */
export function traceIp6(script: string, packet: Ip6Packet): Ip6Verdict {
  if (!script.includes(`table ip6 ${IP6_TABLE} {`)) return { kind: 'accept' };
  for (const rule of chainRules(script, 'dispatch')) {
    const m = RULE.exec(rule);
    if (!m) continue;
    const [, daddr, protocol, dport, action] = m;
    if (daddr !== undefined ? !sameAddress(daddr, packet.daddr) : !packet.local) continue;
    if (protocol !== packet.protocol || (dport !== undefined && Number(dport) !== packet.dport)) continue;
    if (action === 'reject') return { kind: 'reject' };
    if (action!.startsWith('goto ')) return { kind: 'dnat', targets: [...new Set(gotoTargets(script, action!.slice(5)))] };
    const map = /map \{ (.*) \}$/.exec(action!);
    const targets = map ? map[1]!.split(', ').map((e) => e.split(' : ')[1]!) : [action!.replace(/^dnat to /, '')];
    return { kind: 'dnat', targets: [...new Set(targets)] };
  }
  return { kind: 'accept' };
}
