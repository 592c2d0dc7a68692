import { sameIp } from './cluster-facts.js';

// What the ingress sandbox's `ip6 meshnet6` table does with a published port, read from `nft list` text. The VIP
// tracer (vip/nft/ip6-tracer.ts) reads the rendered form (`meta l4proto tcp th dport P`), but nft lists a port match
// as `tcp dport P`, and published ports always have one; both spellings are read here. Hand-written: nft's JSON
// output would need a reader of its own for a table that holds a dozen rules.

/** One backend slot of the dispatch: where a share of new connections goes. */
export interface Slot6 {
  address: string;
  port: number;
}

/** The table's entry for one published port. */
export interface PublishedEntry6 {
  /** The dispatch rule, as nft lists it. */
  rule: string;
  verdict: 'dnat' | 'reject';
  /** One per slot of the selector (a backend with weight 2 holds two), in map order. */
  slots: Slot6[];
  /** The source NAT of this port's connections (policy=cluster), with the postrouting rule; absent: none. */
  snat?: { to: string; rule: string };
}

const DISPATCH = /^ip6 daddr (\S+) (?:meta l4proto (tcp|udp) th dport (\d+)|(tcp|udp) dport (\d+)) (.*)$/;
const SNAT = /^ct original ip6 daddr (\S+) meta l4proto (tcp|udp) ct original proto-dst (\d+) ct status dnat snat (?:ip6 )?to (\S+)$/;

/** The rules of one chain of a listed (or rendered) table. */
function chainRules(script: string, chain: string): string[] {
  const at = script.indexOf(`chain ${chain} {\n`);
  if (at < 0) return [];
  const lines = script.slice(at).split('\n').slice(1);
  return lines.slice(0, lines.findIndex((l) => l.trim() === '}')).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('type '));
}

/** `[a]:p`, `a . p` (a map's concatenation) or a bare address (then the frontend's port). */
function slotOf(text: string, port: number): Slot6 | null {
  const t = text.trim();
  const bracketed = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
  if (bracketed) return { address: bracketed[1]!, port: Number(bracketed[2]) };
  const concat = /^([0-9a-fA-F:.]+) \. (\d+)$/.exec(t);
  if (concat) return { address: concat[1]!, port: Number(concat[2]) };
  return /^[0-9a-fA-F:.]+$/.test(t) ? { address: t, port } : null;
}

/** The slots a dispatch action reaches: a DNAT, a map of DNATs, or (affinity) a chain of per-backend chains. */
function slotsOf(script: string, action: string, port: number): Slot6[] {
  const map = /map \{ (.*) \}$/.exec(action);
  if (action.startsWith('dnat ') && map) return map[1]!.split(', ').flatMap((e) => slotOf(e.split(' : ')[1] ?? '', port) ?? []);
  const single = /^dnat (?:ip6 )?to (\S+)$/.exec(action);
  if (single) return [slotOf(single[1]!, port)].flatMap((s) => s ?? []);
  const jump = /^goto (\S+)$/.exec(action);
  if (!jump) return [];
  // Affinity: the service chain's last rule is the selector over per-backend chains (one goto per slot), each
  // chain ending in its DNAT; the rules before it send known clients back to their backend.
  const selector = chainRules(script, jump[1]!).at(-1) ?? '';
  const chains = [...selector.matchAll(/goto (b\d+_\d+)/g)].map((m) => m[1]!);
  return chains.flatMap((b) => chainRules(script, b).flatMap((r) => (r.startsWith('dnat ') ? slotsOf(script, r, port) : [])));
}

/** Pure: the entry of `ip6 meshnet6` for a published port whose frontend is `address` (the sandbox's v6 gwbridge address); null when it has none. */
export function publishedEntry6(script: string, frontend: { address: string; protocol: 'tcp' | 'udp'; port: number }): PublishedEntry6 | null {
  for (const rule of chainRules(script, 'dispatch')) {
    const m = DISPATCH.exec(rule);
    if (!m || !sameIp(m[1]!, frontend.address)) continue;
    if ((m[2] ?? m[4]) !== frontend.protocol || Number(m[3] ?? m[5]) !== frontend.port) continue;
    const action = m[6]!;
    const entry: PublishedEntry6 = action === 'reject' ? { rule, verdict: 'reject', slots: [] } : { rule, verdict: 'dnat', slots: slotsOf(script, action, frontend.port) };
    for (const r of chainRules(script, 'postrouting')) {
      const s = SNAT.exec(r);
      if (s && sameIp(s[1]!, frontend.address) && s[2] === frontend.protocol && Number(s[3]) === frontend.port) entry.snat = { to: s[4]!, rule: r };
    }
    return entry;
  }
  return null;
}
