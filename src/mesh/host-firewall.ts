import { z } from 'zod';
import { cidrContains } from '../sandbox/addresses.js';
import { InvalidMeshInputError } from './errors.js';
import { emptyGwbridgeIsolationRuleSet, gwbridgeIsolationRuleSet, gwbridgeIsolationSysctls } from './gwbridge-isolation.js';
import type { IptablesRuleSet, SysctlSetting } from './iptables-ruleset.js';
import { emptyLocalnetGuardRuleSet, localnetGuardRuleSet } from './localnet-guard.js';
import { underlayAddressProblem, underlayFamily } from '../overlay/underlay-address.js';
import { emptyVxlanPeerRuleSet, emptyVxlanPeerRuleSet6, vxlanPeerRuleSet, vxlanPeerRuleSet6 } from './vxlan-peers.js';

// Names and addresses end up in iptables-restore input: anything but these characters could
// smuggle a rule in, so they are checked here, at the edge.
const ifname = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a Linux interface name: 1-15 letters, digits, _ . -');
// Built once: a zod schema built inside the refinement cost a no-op pass at 100 tasks about 40 ms.
const cidrv4 = z.cidrv4();
const ipv4 = z.ipv4();
// A VTEP: v4, or a v6 unicast (the text lands in ip6tables-restore input, so it is checked here too).
const vtep = z.string().refine((ip) => underlayAddressProblem(ip) === undefined, 'an IPv4 or unicast IPv6 address');

export const hostFirewallInputSchema = z
  .object({
    gwbridge: z.object({ name: ifname, subnet: cidrv4 }),
    /** Every sandbox leg on the gwbridge (ingress_sbox and tasks): host-side veth name -> its gwbridge address. */
    legs: z.array(z.object({ hostIf: ifname, address: ipv4 })),
    /** Underlay addresses of the live peers that may send VXLAN; null when this node has no overlay. */
    vxlanPeers: z.array(vtep).nullable(),
    /** This node's underlay address: a v6 one moves the VXLAN filter to ip6tables (absent: v4, as before). */
    localVtep: vtep.optional(),
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
  const base = [localnetGuardRuleSet(), gwbridgeIsolationRuleSet({ bridge: v.gwbridge.name, legs: v.legs })];
  // Peers of the other family cannot reach this node's VXLAN socket (the overlay refuses them): none is admitted.
  const peersOf = (family: 'ipv4' | 'ipv6') => v.vxlanPeers && v.vxlanPeers.filter((p) => underlayFamily(p) === family);
  if (v.localVtep === undefined || underlayFamily(v.localVtep) === 'ipv4') return [...base, vxlanPeerRuleSet(peersOf('ipv4'), v.vxlanPort)];
  // A v6 underlay: the v4 filter goes (a node that moved from v4 keeps no stale chain) and ip6tables takes it over.
  return [...base, emptyVxlanPeerRuleSet(), vxlanPeerRuleSet6(peersOf('ipv6'), v.vxlanPort)];
}

/**
 * The same owners with nothing in them: applying each removes meshnet's host firewall (the node leaves). A node
 * on a v6 underlay (`localVtep`) also empties its ip6tables VXLAN filter; a v4 one runs no ip6tables tool.
 */
export function emptyHostFirewallRuleSets(localVtep?: string): IptablesRuleSet[] {
  const sets = [emptyLocalnetGuardRuleSet(), emptyGwbridgeIsolationRuleSet(), emptyVxlanPeerRuleSet()];
  return localVtep !== undefined && underlayFamily(localVtep) === 'ipv6' ? [...sets, emptyVxlanPeerRuleSet6()] : sets;
}

/** Host sysctls the firewall depends on (apply before the rule sets). */
export function hostFirewallSysctls(): SysctlSetting[] {
  return gwbridgeIsolationSysctls();
}
