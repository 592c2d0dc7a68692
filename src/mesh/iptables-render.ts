import {
  BUILTIN_CHAINS,
  type BuiltinRule,
  type IptablesRuleSet,
  type IptablesTable,
  type OwnedChain,
} from './iptables-ruleset.js';
import { commentMatch, establishedFrom as established, portMatch as match } from './iptables-match.js';
import { hasComment, type IptablesState } from './iptables-save-parse.js';
import type { HostPlan, TaskPlan } from './mesh-plan.js';
import { FAMILY_TEXT, type AddressFamily } from './iptables-family.js';

/** The chain Docker uses for published ports; kept so operators find what they know. */
export const INGRESS_CHAIN = 'DOCKER-INGRESS';
/** nat chain of mode=host ports (Docker keeps these in its DOCKER chain). */
export const HOSTPORT_CHAIN = 'MESHNET-HOSTPORT';
/** nat chain inside task namespaces: published port -> target port. */
export const TASK_CHAIN = 'MESHNET-INGRESS';
/** Marks meshnet's rules in the host's built-in chains. */
export const HOST_COMMENT = 'meshnet';
/** Marks the mesh's rules in a task's built-in chains; distinct because other meshnet parts (DNS) share task nat. */
export const TASK_COMMENT = 'meshnet-ingress';

const HOST_OWNED_CHAINS: IptablesRuleSet['ownedChains'] = [
  { table: 'nat', name: INGRESS_CHAIN },
  { table: 'nat', name: HOSTPORT_CHAIN },
  { table: 'filter', name: INGRESS_CHAIN },
];

const TABLE_ORDER: IptablesTable[] = ['filter', 'nat', 'mangle'];
const DNATED = '-m conntrack --ctstate DNAT';

function networkOf(cidr: string): string {
  const [addr, lenText] = cidr.split('/');
  const len = Number(lenText);
  const n = addr!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const masked = len === 0 ? 0 : Math.floor(n / 2 ** (32 - len)) * 2 ** (32 - len);
  return `${[24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join('.')}/${len}`;
}

/**
 * The host namespace's rules for a plan: DOCKER-INGRESS (nat, filter), mode=host DNATs, masquerades. With `ipv6`
 * the plan's addresses and gwbridge subnet are its v6 ones and the set is for the ip6tables writer.
 */
export function hostRuleSet(host: HostPlan, family: AddressFamily = 'ipv4'): IptablesRuleSet {
  const f = FAMILY_TEXT[family];
  const c = commentMatch(HOST_COMMENT);
  const gw = host.gwbridge.name;
  const chains: OwnedChain[] = [];
  const builtins: BuiltinRule[] = [];
  const local = '-m addrtype --dst-type LOCAL';
  const published = host.ingressPorts.length + host.hostModePorts.length > 0;

  if (host.ingressPorts.length > 0) {
    chains.push({
      table: 'nat',
      name: INGRESS_CHAIN,
      rules: [
        ...host.ingressPorts.map(
          (p) => `${match(p.protocol, 'dport', p.port)} -j DNAT --to-destination ${f.hostPort(host.sboxAddress, p.port)}`,
        ),
        '-j RETURN',
      ],
    });
    builtins.push({ table: 'nat', chain: 'PREROUTING', rule: `${local} ${c} -j ${INGRESS_CHAIN}` });
    builtins.push({ table: 'nat', chain: 'OUTPUT', rule: `${local} ${c} -j ${INGRESS_CHAIN}` });
  }
  if (host.hostModePorts.length > 0) {
    chains.push({
      table: 'nat',
      name: HOSTPORT_CHAIN,
      rules: [
        ...host.hostModePorts.map(
          (p) => `${match(p.protocol, 'dport', p.port)} -j DNAT --to-destination ${f.hostPort(p.taskAddress, p.targetPort)}`,
        ),
        '-j RETURN',
      ],
    });
    builtins.push({ table: 'nat', chain: 'PREROUTING', rule: `${local} ${c} -j ${HOSTPORT_CHAIN}` });
    builtins.push({ table: 'nat', chain: 'OUTPUT', rule: `${local} ${c} -j ${HOSTPORT_CHAIN}` });
  }
  if (published) {
    chains.push({
      table: 'filter',
      name: INGRESS_CHAIN,
      // Only DNATed connections into the gwbridge and their replies out of it: a bare `--dport P`
      // would also accept leg-to-leg traffic and routed traffic to any task on port P, whichever
      // order this jump and the isolation chain (gwbridge-isolation.ts) end up in FORWARD.
      rules: [
        ...host.ingressPorts.flatMap((p) => [
          `-d ${host.sboxAddress}/${f.hostBits} -o ${gw} ${match(p.protocol, 'dport', p.port)} ${DNATED} -j ACCEPT`,
          `-s ${host.sboxAddress}/${f.hostBits} -i ${gw} ${established(p.protocol, p.port)} -j ACCEPT`,
        ]),
        ...host.hostModePorts.flatMap((p) => [
          `-d ${p.taskAddress}/${f.hostBits} -o ${gw} ${match(p.protocol, 'dport', p.targetPort)} ${DNATED} -j ACCEPT`,
          `-s ${p.taskAddress}/${f.hostBits} -i ${gw} ${established(p.protocol, p.targetPort)} -j ACCEPT`,
        ]),
        '-j RETURN',
      ],
    });
    builtins.push({ table: 'filter', chain: 'FORWARD', rule: `${c} -j ${INGRESS_CHAIN}` });
    // Locally generated connections (curl localhost:P) leave through the gwbridge from 127.0.0.1.
    builtins.push({
      table: 'nat',
      chain: 'POSTROUTING',
      rule: `-o ${gw} -m addrtype --src-type LOCAL ${c} -j MASQUERADE`,
    });
  }
  // Tasks and the sandbox reach the outside through the gwbridge: masquerade as long as the mesh exists.
  builtins.push({
    table: 'nat',
    chain: 'POSTROUTING',
    rule: `-s ${family === 'ipv4' ? networkOf(host.gwbridge.subnet) : host.gwbridge.subnet} ! -o ${gw} ${c} -j MASQUERADE`,
  });
  return {
    comment: HOST_COMMENT,
    ownedChains: HOST_OWNED_CHAINS,
    chains,
    builtins,
  };
}

/** The host rule set that removes everything the mesh put in the host namespace (node leaves the mesh). */
export function emptyHostRuleSet(): IptablesRuleSet {
  return { comment: HOST_COMMENT, ownedChains: HOST_OWNED_CHAINS, chains: [], builtins: [] };
}

/** A task namespace's rules: published port -> target port on its ingress address (v6 twin: `ipv6`). */
export function taskRuleSet(task: Pick<TaskPlan, 'redirects'>, family: AddressFamily = 'ipv4'): IptablesRuleSet {
  const chains: OwnedChain[] = [];
  const builtins: BuiltinRule[] = [];
  if (task.redirects.length > 0) {
    chains.push({
      table: 'nat',
      name: TASK_CHAIN,
      rules: task.redirects.map(
        (r) => `-d ${r.address}/${FAMILY_TEXT[family].hostBits} ${match(r.protocol, 'dport', r.port)} -j REDIRECT --to-ports ${r.targetPort}`,
      ),
    });
    builtins.push({ table: 'nat', chain: 'PREROUTING', rule: `${commentMatch(TASK_COMMENT)} -j ${TASK_CHAIN}` });
  }
  return { comment: TASK_COMMENT, ownedChains: [{ table: 'nat', name: TASK_CHAIN }], chains, builtins };
}

/** Tables a rule set may touch: those to read back before rendering a transaction. */
export function tablesOf(set: IptablesRuleSet): IptablesTable[] {
  const used = new Set<IptablesTable>([...set.ownedChains.map((c) => c.table), ...set.builtins.map((b) => b.table)]);
  return TABLE_ORDER.filter((t) => used.has(t));
}

/**
 * What a namespace holds of this owner once `set` is applied: its chains and its rules in
 * built-in chains, as iptables-save would print them. Rendering the next set against this
 * needs no read of the kernel.
 */
export function ruleSetState(set: IptablesRuleSet): IptablesState {
  const state: IptablesState = new Map(tablesOf(set).map((t) => [t, new Map<string, string[]>()]));
  for (const c of set.chains) state.get(c.table)!.set(c.name, [...c.rules]);
  for (const b of set.builtins) {
    const chains = state.get(b.table)!;
    chains.set(b.chain, [...(chains.get(b.chain) ?? []), b.rule]);
  }
  return state;
}

/**
 * The `iptables-restore --noflush` input that turns `current` into `desired`, or null when
 * nothing differs. Only this owner's objects are touched: its own chains (declaring one
 * flushes it, so it is refilled in the same transaction; unwanted ones are flushed and
 * deleted) and the rules in built-in chains that carry its comment (stale ones deleted by
 * exact text, missing ones inserted at the top). Everything else is left alone.
 */
export function renderRestore(desired: IptablesRuleSet, current: IptablesState): string | null {
  const out: string[] = [];
  for (const table of tablesOf(desired)) {
    const have = current.get(table) ?? new Map<string, string[]>();
    const decls: string[] = [];
    const appends: string[] = [];
    const deletes: string[] = [];
    const inserts: string[] = [];
    const removals: string[] = [];

    for (const owned of desired.ownedChains.filter((o) => o.table === table)) {
      const want = desired.chains.find((c) => c.table === table && c.name === owned.name);
      const cur = have.get(owned.name);
      if (want) {
        if (cur === undefined || !sameList(cur, want.rules)) {
          decls.push(`:${owned.name} - [0:0]`);
          appends.push(...want.rules.map((r) => `-A ${owned.name} ${r}`));
        }
      } else if (cur !== undefined) {
        decls.push(`:${owned.name} - [0:0]`);
        removals.push(`-X ${owned.name}`);
      }
    }

    // Built-in chains: compare as multisets, so duplicates left by a crash are pruned too.
    const wanted = desired.builtins.filter((b) => b.table === table).map((b) => `${b.chain} ${b.rule}`);
    const unmatched = [...wanted];
    for (const chain of BUILTIN_CHAINS) {
      for (const rule of have.get(chain) ?? []) {
        if (!hasComment(rule, desired.comment)) continue;
        const at = unmatched.indexOf(`${chain} ${rule}`);
        if (at >= 0) unmatched.splice(at, 1);
        else deletes.push(`-D ${chain} ${rule}`);
      }
    }
    // Inserting at position 1 in reverse keeps the desired order among the new rules.
    for (const entry of [...unmatched].reverse()) {
      const space = entry.indexOf(' ');
      inserts.push(`-I ${entry.slice(0, space)} 1 ${entry.slice(space + 1)}`);
    }

    const body = [...decls, ...deletes, ...appends, ...inserts, ...removals];
    if (body.length > 0) out.push(`*${table}`, ...body, 'COMMIT');
  }
  return out.length > 0 ? `${out.join('\n')}\n` : null;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
