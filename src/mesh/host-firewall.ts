import { z } from 'zod';
import { cidrContains } from '../sandbox/addresses.js';
import { InvalidMeshInputError } from './errors.js';
import { emptyGwbridgeIsolationRuleSet, gwbridgeIsolationRuleSet, gwbridgeIsolationSysctls } from './gwbridge-isolation.js';
import type { IptablesRuleSet, SysctlSetting } from './iptables-ruleset.js';
import { emptyLocalnetGuardRuleSet, localnetGuardRuleSet } from './localnet-guard.js';
import { emptyVxlanPeerRuleSet, vxlanPeerRuleSet } from './vxlan-peers.js';

// Names and addresses end up in iptables-restore input: anything but these characters could
// smuggle a rule in, so they are checked here, at the edge.
const ifname = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a Linux interface name: 1-15 letters, digits, _ . -');
// Built once: a zod schema built inside the refinement cost a no-op pass at 100 tasks about 40 ms.
const cidrv4 = z.cidrv4();
const ipv4 = z.ipv4();

export const hostFirewallInputSchema = z
  .object({
    gwbridge: z.object({ name: ifname, subnet: cidrv4 }),
    /** Every sandbox leg on the gwbridge (ingress_sbox and tasks): host-side veth name -> its gwbridge address. */
    legs: z.array(z.object({ hostIf: ifname, address: ipv4 })),
    /** Underlay addresses of the live peers that may send VXLAN; null when this node has no overlay. */
    vxlanPeers: z.array(ipv4).nullable(),
    vxlanPort: z.number().int().min(1).max(65535).optional(),
  })
  .superRefine((v, ctx) => {
    // zod runs this even when a field above failed: only compare addresses that parsed.
    const subnetOk = cidrv4.safeParse(v.gwbridge.subnet).success;
    const seen = new Set<string>();
    v.legs.forEach((leg, i) => {
      if (seen.has(leg.hostIf)) ctx.addIssue({ code: 'custom', path: ['legs', i, 'hostIf'], message: `leg ${leg.hostIf} is listed twice` });
      seen.add(leg.hostIf);
      if (subnetOk && ipv4.safeParse(leg.address).success && !cidrContains(v.gwbridge.subnet, leg.address)) {
        ctx.addIssue({ code: 'custom', path: ['legs', i, 'address'], message: `${leg.address} is outside the gwbridge subnet ${v.gwbridge.subnet}` });
      }
    });
  });

export type HostFirewallInput = z.input<typeof hostFirewallInputSchema>;

/**
 * The host firewall meshnet owns, as rule sets for the host namespace's IptablesWriter (one
 * `writer.apply` each; each is its own owner, so a change to one rewrites only that one):
 * the localnet guard (localnet-guard.ts), the gwbridge isolation and anti-spoofing
 * (gwbridge-isolation.ts), and VXLAN from known peers only (vxlan-peers.ts). Throws
 * InvalidMeshInputError naming every bad field.
 */
export function hostFirewallRuleSets(input: HostFirewallInput): IptablesRuleSet[] {
  const result = hostFirewallInputSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new InvalidMeshInputError(`invalid host firewall input: ${problems.join('; ')}`);
  }
  const v = result.data;
  return [
    localnetGuardRuleSet(),
    gwbridgeIsolationRuleSet({ bridge: v.gwbridge.name, legs: v.legs }),
    vxlanPeerRuleSet(v.vxlanPeers, v.vxlanPort),
  ];
}

/** The same owners with nothing in them: applying each removes meshnet's host firewall (the node leaves). */
export function emptyHostFirewallRuleSets(): IptablesRuleSet[] {
  return [emptyLocalnetGuardRuleSet(), emptyGwbridgeIsolationRuleSet(), emptyVxlanPeerRuleSet()];
}

/** Host sysctls the firewall depends on (apply before the rule sets). */
export function hostFirewallSysctls(): SysctlSetting[] {
  return gwbridgeIsolationSysctls();
}
