/**
 * Rule fragments in the exact spelling `iptables-save` prints, so rules read back from the
 * kernel compare equal to the rules rendered (iptables-ruleset.ts).
 */

/** `-p tcp -m tcp --dport 80`: a protocol and one port. */
export function portMatch(protocol: string, dir: 'dport' | 'sport', port: number): string {
  return `-p ${protocol} -m ${protocol} --${dir} ${port}`;
}

/** Replies of a connection whose server side is `port`. */
export function establishedFrom(protocol: string, port: number): string {
  return `-p ${protocol} -m conntrack --ctstate RELATED,ESTABLISHED -m ${protocol} --sport ${port}`;
}

/** Marks an owner's rule in a built-in chain (see IptablesRuleSet.comment). */
export function commentMatch(comment: string): string {
  return `-m comment --comment ${comment}`;
}
