import { commentMatch, portMatch } from '../mesh/iptables-match.js';
import type { IptablesRuleSet } from '../mesh/iptables-ruleset.js';
import { ESP_MARK } from './encryption-plan.js';
import { VXLAN_PORT } from './overlay-spec.js';

/** Marks the encryption rules in the host's built-in chains. */
export const ESP_COMMENT = 'meshnet-esp';
/** mangle chain, jumped from OUTPUT for VXLAN: marks the datagrams of encrypted VNIs for the ESP policies. */
export const ESP_MARK_CHAIN = 'MESHNET-ESP-MARK';
/** filter chain, jumped from INPUT for VXLAN: drops encrypted VNIs' datagrams that did not come through ESP. */
export const ESP_IN_CHAIN = 'MESHNET-ESP-IN';
/** filter chain, jumped from OUTPUT for VXLAN: drops marked datagrams that no ESP policy took (no SA yet, no ring). */
export const ESP_OUT_CHAIN = 'MESHNET-ESP-OUT';

const OWNED: IptablesRuleSet['ownedChains'] = [
  { table: 'mangle', name: ESP_MARK_CHAIN },
  { table: 'filter', name: ESP_IN_CHAIN },
  { table: 'filter', name: ESP_OUT_CHAIN },
];

/** `-m u32` on the VNI: the 24 bits after the VXLAN flags, behind the IP header (its length from IHL) and UDP's 8 bytes. */
export function vniMatch(vni: number): string {
  return `-m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x8=0x${vni.toString(16)}"`;
}

const hexMark = `0x${ESP_MARK.toString(16)}`;

/**
 * The host rules an encrypted overlay needs, as Docker's overlay driver has them: the VNI is not
 * visible to an XFRM selector, so the host marks each encrypted VNI's datagrams on their way out
 * and the outbound policies match the mark. Inbound, an XFRM policy cannot tell one VNI from
 * another either (and would also catch the plain networks from the same peer), so the filter
 * drops an encrypted VNI's datagram that arrived without ESP (`-m policy --pol none`): forged or
 * downgraded cleartext never reaches the overlay. Outbound, a marked datagram that no policy took
 * is dropped too, so a missing SA or ring fails closed. Empty (no rules) without encrypted VNIs.
 */
export function encryptionRuleSet(vnis: readonly number[], port: number = VXLAN_PORT): IptablesRuleSet {
  if (vnis.length === 0) return { comment: ESP_COMMENT, ownedChains: OWNED, chains: [], builtins: [] };
  const sorted = [...new Set(vnis)].sort((a, b) => a - b);
  const jump = (chain: string) => `${portMatch('udp', 'dport', port)} ${commentMatch(ESP_COMMENT)} -j ${chain}`;
  return {
    comment: ESP_COMMENT,
    ownedChains: OWNED,
    chains: [
      { table: 'mangle', name: ESP_MARK_CHAIN, rules: sorted.map((v) => `${vniMatch(v)} -j MARK --set-xmark ${hexMark}/0xffffffff`) },
      { table: 'filter', name: ESP_IN_CHAIN, rules: sorted.map((v) => `${vniMatch(v)} -m policy --dir in --pol none -j DROP`) },
      { table: 'filter', name: ESP_OUT_CHAIN, rules: [`-m mark --mark ${hexMark} -m policy --dir out --pol none -j DROP`] },
    ],
    builtins: [
      { table: 'mangle', chain: 'OUTPUT', rule: jump(ESP_MARK_CHAIN) },
      { table: 'filter', chain: 'INPUT', rule: jump(ESP_IN_CHAIN) },
      { table: 'filter', chain: 'OUTPUT', rule: jump(ESP_OUT_CHAIN) },
    ],
  };
}
