/**
 * Desired iptables state for one owner in one namespace, as plain data.
 *
 * Rules are kept in the exact text `iptables-save` prints (after `-A <chain> `), so the
 * rules read back from the kernel compare equal to the rules we want, and an apply that
 * would change nothing is skipped.
 */

import type { AddressFamily } from './iptables-family.js';

export type IptablesTable = 'nat' | 'filter' | 'mangle';

export const BUILTIN_CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const;
export type BuiltinChain = (typeof BUILTIN_CHAINS)[number];

/** A chain meshnet owns outright: flushed and refilled whenever it differs. */
export interface OwnedChain {
  table: IptablesTable;
  name: string;
  rules: string[];
}

/** A rule meshnet adds to a built-in chain; it carries the ruleset's comment so pruning can find it. */
export interface BuiltinRule {
  table: IptablesTable;
  chain: BuiltinChain;
  rule: string;
}

export interface IptablesRuleSet {
  /** The `-m comment --comment` value that marks this owner's rules in built-in chains. */
  comment: string;
  /** Which writer of the namespace takes it: `ipv6` the ip6tables one (absent: ipv4). */
  family?: AddressFamily;
  /** Every chain this owner may ever create in this namespace; those not in `chains` are deleted. */
  ownedChains: { table: IptablesTable; name: string }[];
  chains: OwnedChain[];
  builtins: BuiltinRule[];
}

/** A net.* sysctl the mesh needs in a namespace. */
export interface SysctlSetting {
  key: string;
  value: string;
}
