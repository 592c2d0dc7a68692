import type { IptablesRuleSet } from '../mesh/iptables-ruleset.js';
import type { Keyring } from './keyring.js';
import { desiredEncryption, isEncrypted, type EncryptionPlan } from './encryption-plan.js';
import { encryptionRuleSet } from './encryption-firewall.js';
import { underlayFamily } from './underlay-address.js';

/** What a node needs for its encrypted overlays: the XFRM plan and the host rules that go with it. */
export interface NodeEncryption {
  /** Null when the node has no encrypted overlay: meshnet then owns no XFRM object on it. */
  plan: EncryptionPlan | null;
  /**
   * The host rules; empty once the cluster has a keyring but no encrypted overlay here (so the rules of
   * a network that went are removed), null in a cluster that never encrypted (its firewall is as before).
   */
  firewall: IptablesRuleSet | null;
}

/**
 * Pure: the encryption slice of a node's plan, from the overlays it has (their networks' options
 * say which are encrypted), the peers that may carry them, and the cluster's keyring.
 */
export function nodeEncryption(input: {
  local: string;
  overlays: readonly { vni: number; options: Readonly<Record<string, string>> }[];
  peers: readonly string[] | null;
  ring: Keyring | undefined;
  now: number;
}): NodeEncryption {
  // Over a v6 underlay meshnet has no ESP: those overlays refuse to build (validateOverlayInput), so nothing is keyed.
  const v6 = underlayFamily(input.local) === 'ipv6';
  const vnis = v6 ? [] : input.overlays.filter((o) => isEncrypted(o.options)).map((o) => o.vni);
  return {
    // A peer on a v6 underlay cannot carry this node's overlays (refused there too): no SA toward it.
    plan: desiredEncryption({ local: input.local, peers: (input.peers ?? []).filter((p) => underlayFamily(p) === 'ipv4'), vnis, ring: input.ring, now: input.now }),
    firewall: vnis.length > 0 || input.ring !== undefined ? encryptionRuleSet(vnis) : null,
  };
}
