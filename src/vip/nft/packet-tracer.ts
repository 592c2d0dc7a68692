import { isIPv4 } from 'node:net';
import { NftParseError } from './errors.js';

/**
 * Evaluates a packet against rendered meshnet ruleset text, the way kube-proxy tests its
 * nftables proxier: parse the subset of nft syntax the renderer writes (tables, maps with
 * elements, sets, chains, vmaps, numgen/jhash slot lookups and cascades, dnat, snat, reject,
 * marks) and follow the hooks a new connection's first packet passes. Random or hashed choices
 * are reported as the set of candidates with their share of new connections. Anything outside
 * the subset throws, so a renderer change the tracer does not understand fails the tests.
 */

/** The first packet of a new connection. */
export interface TracePacket {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp';
  dport: number;
  /** Packet mark on arrival (normally 0). */
  mark?: number;
  /** 'output': sent by a local task (east-west); 'prerouting': arriving from outside (ingress). */
  path: 'output' | 'prerouting';
  /** Addresses local to the namespace (for `fib daddr type local` and input vs forward). */
  localAddresses?: string[];
  /** Affinity sets that already hold `src` (a returning client). */
  knownInSets?: string[];
}

export interface TraceCandidate {
  address: string;
  port: number;
  /** Fraction of new connections sent here (all candidates sum to 1). */
  share: number;
}

export interface TraceResult {
  verdict: 'accept' | 'reject';
  rejectWith?: 'tcp reset' | 'icmp port-unreachable';
  /** The chain the dispatch map sent the packet to (a selection chain, svc-<id>, or no-backend). */
  serviceChain?: string;
  /** DNAT targets; empty when the packet was not balanced. */
  candidates: TraceCandidate[];
  mark: number;
  snat?: string;
  /** Affinity sets the service chain checked the client against. */
  affinitySets: string[];
  /** Affinity sets the chosen backend chains refresh. */
  affinityUpdates: string[];
  /** Every chain evaluated, in order of first visit. */
  chains: string[];
  /** Share of new connections whose slot had no backend (a renderer bug when > 0). */
  unmapped: number;
}

interface Chain {
  name: string;
  hook?: string;
  priority?: number;
  rules: string[];
}

/** A parsed ruleset: maps (key -> value text), sets and chains. */
export interface ParsedRuleset {
  maps: Map<string, Map<string, string>>;
  sets: Set<string>;
  chains: Map<string, Chain>;
}

const PRIORITY: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

function parsePriority(text: string): number {
  const m = /^(-?\d+)$/.exec(text) ?? null;
  if (m) return Number(m[1]);
  const sym = /^([a-z]+)\s*([+-])\s*(\d+)$/.exec(text);
  if (sym && PRIORITY[sym[1]!] !== undefined) return PRIORITY[sym[1]!]! + (sym[2] === '-' ? -1 : 1) * Number(sym[3]);
  if (PRIORITY[text] !== undefined) return PRIORITY[text]!;
  throw new NftParseError(`unknown chain priority ${text}`);
}

/** Parses the text the renderer writes (the full-table form). */
export function parseRuleset(text: string): ParsedRuleset {
  const rs: ParsedRuleset = { maps: new Map(), sets: new Set(), chains: new Map() };
  const lines = text.split('\n').map((l) => l.trim());
  let i = 0;
  while (i < lines.length) {
    const line = lines[i++]!;
    let m: RegExpExecArray | null;
    if (!line || /^(add|delete) table /.test(line) || /^table ip \S+ \{$/.test(line) || line === '}') continue;
    if ((m = /^set (\S+) \{.*\}$/.exec(line))) {
      rs.sets.add(m[1]!);
    } else if ((m = /^map (\S+) \{$/.exec(line))) {
      const elements = new Map<string, string>();
      rs.maps.set(m[1]!, elements);
      for (; i < lines.length && lines[i] !== '}'; i++) {
        const l = lines[i]!;
        if (/^(type|typeof) /.test(l) || l === 'elements = {') continue;
        const e = /^(.+?)(?: comment "[^"]*")? : (.+?),?$/.exec(l);
        if (!e) throw new NftParseError(`map ${m[1]}: cannot parse element line ${JSON.stringify(l)}`);
        elements.set(e[1]!, e[2]!);
      }
      i++;
    } else if ((m = /^chain (\S+) \{$/.exec(line))) {
      const chain: Chain = { name: m[1]!, rules: [] };
      for (; i < lines.length && lines[i] !== '}'; i++) {
        const l = lines[i]!;
        const h = /^type \w+ hook (\w+) priority ([^;]+); policy accept;$/.exec(l);
        if (h) {
          chain.hook = h[1]!;
          chain.priority = parsePriority(h[2]!.trim());
        } else chain.rules.push(l.replace(/ comment "[^"]*"$/, ''));
      }
      i++;
      rs.chains.set(chain.name, chain);
    } else {
      throw new NftParseError(`unexpected line ${JSON.stringify(line)}`);
    }
  }
  return rs;
}

/** Mark as the renderer writes it. */
function markKey(mark: number): string {
  return `0x${mark.toString(16).padStart(8, '0')}`;
}

interface State {
  share: number;
  dst: string;
  dport: number;
  mark: number;
  dnat?: { address: string; port: number };
  reject?: 'tcp reset' | 'icmp port-unreachable';
  snat?: string;
  terminal: boolean;
}

interface Ctx {
  rs: ParsedRuleset;
  pkt: TracePacket;
  origDst: string;
  origDport: number;
  chains: string[];
  affinitySets: Set<string>;
  affinityUpdates: Set<string>;
  serviceChain?: string;
  unmapped: number;
  depth: number;
}

function lookup(ctx: Ctx, map: string, key: string): string | undefined {
  const m = ctx.rs.maps.get(map);
  if (!m) throw new NftParseError(`rule uses map @${map}, which the ruleset does not declare`);
  return m.get(key);
}

/** `0` or `0-2` -> how many values of 0..mod-1 it covers. */
function rangeSize(spec: string): number {
  const r = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (!r) throw new NftParseError(`cannot parse range ${spec}`);
  return r[2] === undefined ? 1 : Number(r[2]) - Number(r[1]) + 1;
}

function verdictTarget(v: string): { kind: 'goto' | 'jump'; chain: string } {
  const m = /^(goto|jump) (\S+)$/.exec(v);
  if (!m) throw new NftParseError(`cannot parse verdict ${v}`);
  return { kind: m[1] as 'goto' | 'jump', chain: m[2]! };
}

function runChain(ctx: Ctx, name: string, state: State): State[] {
  const chain = ctx.rs.chains.get(name);
  if (!chain) throw new NftParseError(`jump to chain ${name}, which the ruleset does not declare`);
  if (++ctx.depth > 64) throw new NftParseError(`chain nesting deeper than 64 at ${name}`);
  if (!ctx.chains.includes(name)) ctx.chains.push(name);
  const out = runRules(ctx, chain.rules, 0, state);
  ctx.depth--;
  return out;
}

/** Follows a verdict: goto ends this chain with the target's outcome; jump continues after it. */
function follow(ctx: Ctx, verdict: string, rules: string[], next: number, state: State): State[] {
  const t = verdictTarget(verdict);
  const results = runChain(ctx, t.chain, state);
  if (t.kind === 'goto') return results;
  return results.flatMap((s) => (s.terminal ? [s] : runRules(ctx, rules, next, s)));
}

function runRules(ctx: Ctx, rules: string[], from: number, state: State): State[] {
  const p = ctx.pkt;
  for (let i = from; i < rules.length; i++) {
    let rule = rules[i]!;
    let m: RegExpExecArray | null;
    if (rule.startsWith('ct state new ')) rule = rule.slice('ct state new '.length); // every traced packet is new
    if (rule === 'counter') continue;
    if ((m = /^(jump|goto) (\S+)$/.exec(rule))) return follow(ctx, rule, rules, i + 1, state);
    if ((m = /^ip daddr \. meta l4proto \. th dport vmap @(\S+)$/.exec(rule))) {
      const v = lookup(ctx, m[1]!, `${state.dst} . ${p.proto} . ${state.dport}`);
      if (v === undefined) continue;
      if (m[1] === 'service-ips') ctx.serviceChain ??= verdictTarget(v).chain;
      return follow(ctx, v, rules, i + 1, state);
    }
    if ((m = /^ip daddr \. meta l4proto vmap @(\S+)$/.exec(rule))) {
      const v = lookup(ctx, m[1]!, `${state.dst} . ${p.proto}`);
      if (v === undefined) continue;
      if (m[1] === 'service-ips-any') ctx.serviceChain ??= verdictTarget(v).chain;
      return follow(ctx, v, rules, i + 1, state);
    }
    if ((m = /^meta l4proto (tcp|udp) dnat to ip daddr \. meta l4proto \. (numgen (?:inc|random)|jhash ip saddr) mod (\d+)(?: seed 0x[0-9a-f]+)? map @(\S+)$/.exec(rule))) {
      // Every-port VIP: the slot holds an address; the connection keeps its destination port.
      if (m[1] !== p.proto) continue;
      const mod = Number(m[3]);
      const outs: State[] = [];
      for (let slot = 0; slot < mod; slot++) {
        const v = lookup(ctx, m[4]!, `${state.dst} . ${p.proto} . ${slot}`);
        if (v === undefined) {
          ctx.unmapped += state.share / mod;
          continue;
        }
        outs.push({ ...state, share: state.share / mod, dnat: { address: v, port: state.dport }, terminal: true });
      }
      return outs;
    }
    if ((m = /^meta mark vmap @(\S+)$/.exec(rule))) {
      const v = state.mark ? lookup(ctx, m[1]!, markKey(state.mark)) : undefined;
      if (v === undefined) continue;
      if (m[1] === 'fwmark-services') ctx.serviceChain ??= verdictTarget(v).chain;
      return follow(ctx, v, rules, i + 1, state);
    }
    if ((m = /^fib daddr type local meta mark set meta l4proto \. th dport map @(\S+)$/.exec(rule))) {
      if (!(p.localAddresses ?? []).includes(state.dst)) continue;
      const v = lookup(ctx, m[1]!, `${p.proto} . ${state.dport}`);
      if (v !== undefined) state = { ...state, mark: Number(v) };
      continue;
    }
    if ((m = /^meta mark set ip daddr \. meta l4proto \. th dport map @(\S+)$/.exec(rule))) {
      const v = lookup(ctx, m[1]!, `${state.dst} . ${p.proto} . ${state.dport}`);
      if (v !== undefined) state = { ...state, mark: Number(v) };
      continue;
    }
    if ((m = /^meta l4proto (tcp|udp) dnat ip addr \. port to (ip daddr \. meta l4proto \. th dport|meta mark) \. (numgen (?:inc|random)|jhash ip saddr) mod (\d+)(?: seed 0x[0-9a-f]+)? map @(\S+)$/.exec(rule))) {
      if (m[1] !== p.proto) continue;
      const prefix = m[2] === 'meta mark' ? markKey(state.mark) : `${state.dst} . ${p.proto} . ${state.dport}`;
      const mod = Number(m[4]);
      const outs: State[] = [];
      for (let slot = 0; slot < mod; slot++) {
        const v = lookup(ctx, m[5]!, `${prefix} . ${slot}`);
        if (v === undefined) {
          ctx.unmapped += state.share / mod;
          continue;
        }
        const [address, port] = v.split(' . ');
        outs.push({ ...state, share: state.share / mod, dnat: { address: address!, port: Number(port) }, terminal: true });
      }
      return outs;
    }
    if ((m = /^(numgen (?:inc|random)|jhash ip saddr) mod (\d+)(?: seed 0x[0-9a-f]+)? (\d+(?:-\d+)?) (goto \S+)$/.exec(rule))) {
      // One step of a cascade: this rule takes `size / mod` of what reaches it.
      const frac = rangeSize(m[3]!) / Number(m[2]);
      const taken = follow(ctx, m[4]!, rules, i + 1, { ...state, share: state.share * frac });
      const rest = runRules(ctx, rules, i + 1, { ...state, share: state.share * (1 - frac) });
      return [...taken, ...rest];
    }
    if ((m = /^ip saddr @(\S+) (goto \S+)$/.exec(rule))) {
      if (!ctx.rs.sets.has(m[1]!)) throw new NftParseError(`rule uses set @${m[1]}, which the ruleset does not declare`);
      ctx.affinitySets.add(m[1]!);
      if ((p.knownInSets ?? []).includes(m[1]!)) return follow(ctx, m[2]!, rules, i + 1, state);
      continue;
    }
    if ((m = /^update @(\S+) \{ ip saddr \}$/.exec(rule))) {
      ctx.affinityUpdates.add(m[1]!);
      continue;
    }
    if ((m = /^meta l4proto (tcp|udp) dnat to (\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(rule))) {
      if (m[1] !== p.proto) continue;
      return [{ ...state, dnat: { address: m[2]!, port: m[3] ? Number(m[3]) : state.dport }, terminal: true }];
    }
    if (rule === 'meta l4proto tcp reject with tcp reset') {
      if (p.proto === 'tcp') return [{ ...state, reject: 'tcp reset', terminal: true }];
      continue;
    }
    if (rule === 'reject with icmp type port-unreachable' || rule === 'reject') return [{ ...state, reject: 'icmp port-unreachable', terminal: true }];
    if ((m = /^meta l4proto (tcp|udp) ct status dnat snat to ct original ip daddr \. meta l4proto \. ct original proto-dst map @(\S+)$/.exec(rule))) {
      if (m[1] !== p.proto || !state.dnat) continue;
      const v = lookup(ctx, m[2]!, `${ctx.origDst} . ${p.proto} . ${ctx.origDport}`);
      if (v !== undefined) return [{ ...state, snat: v, terminal: true }];
      continue;
    }
    if ((m = /^ct status dnat snat to meta mark map @(\S+)$/.exec(rule))) {
      if (!state.dnat || !state.mark) continue;
      const v = lookup(ctx, m[1]!, markKey(state.mark));
      if (v !== undefined) return [{ ...state, snat: v, terminal: true }];
      continue;
    }
    throw new NftParseError(`packet tracer does not understand rule ${JSON.stringify(rule)}`);
  }
  return [{ ...state, terminal: false }];
}

function baseChains(rs: ParsedRuleset, hook: string): Chain[] {
  return [...rs.chains.values()].filter((c) => c.hook === hook).sort((a, b) => a.priority! - b.priority!);
}

/** Runs one hook's base chains in priority order; each state leaves a chain accepted unless rejected. */
function runHook(ctx: Ctx, hook: string, states: State[]): State[] {
  for (const chain of baseChains(ctx.rs, hook)) {
    states = states.flatMap((s) => {
      if (s.reject) return [s];
      return runChain(ctx, chain.name, { ...s, terminal: false }).map((r) => {
        const next = { ...r, terminal: false };
        if (r.dnat && !s.dnat) {
          next.dst = r.dnat.address;
          next.dport = r.dnat.port;
        }
        return next;
      });
    });
  }
  return states;
}

/** Traces the first packet of a new connection through `rulesetText`. */
export function tracePacket(rulesetText: string | ParsedRuleset, pkt: TracePacket): TraceResult {
  if (!isIPv4(pkt.src) || !isIPv4(pkt.dst)) throw new NftParseError('trace packets need IPv4 src and dst');
  const rs = typeof rulesetText === 'string' ? parseRuleset(rulesetText) : rulesetText;
  const ctx: Ctx = {
    rs,
    pkt,
    origDst: pkt.dst,
    origDport: pkt.dport,
    chains: [],
    affinitySets: new Set(),
    affinityUpdates: new Set(),
    unmapped: 0,
    depth: 0,
  };
  let states: State[] = [{ share: 1, dst: pkt.dst, dport: pkt.dport, mark: pkt.mark ?? 0, terminal: false }];
  if (pkt.path === 'output') {
    states = runHook(ctx, 'output', states);
  } else {
    states = runHook(ctx, 'prerouting', states);
    states = states.flatMap((s) => runHook(ctx, (pkt.localAddresses ?? []).includes(s.dst) ? 'input' : 'forward', [s]));
  }
  states = runHook(ctx, 'postrouting', states.filter((s) => !s.reject)).concat(states.filter((s) => s.reject));
  const rejected = states.find((s) => s.reject);
  const candidates = new Map<string, TraceCandidate>();
  for (const s of states) {
    if (!s.dnat || s.reject) continue;
    const k = `${s.dnat.address}:${s.dnat.port}`;
    const c = candidates.get(k) ?? { address: s.dnat.address, port: s.dnat.port, share: 0 };
    c.share += s.share;
    candidates.set(k, c);
  }
  const snat = states.find((s) => s.snat)?.snat;
  return {
    verdict: rejected ? 'reject' : 'accept',
    ...(rejected?.reject ? { rejectWith: rejected.reject } : {}),
    ...(ctx.serviceChain ? { serviceChain: ctx.serviceChain } : {}),
    candidates: [...candidates.values()],
    mark: states[0]?.mark ?? 0,
    ...(snat ? { snat } : {}),
    affinitySets: [...ctx.affinitySets],
    affinityUpdates: [...ctx.affinityUpdates],
    chains: ctx.chains,
    unmapped: ctx.unmapped,
  };
}
