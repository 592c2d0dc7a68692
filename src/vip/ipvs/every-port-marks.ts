/**
 * The firewall marks that feed every-port VIPs (frontend port 0): IPVS matches a VIP on one port only, so, as Swarm
 * does, a VIP balancing every port is an fwmark service fed by a MARK rule on the VIP's address.
 */
import { createHash } from 'node:crypto';
import type { L4Protocol, LbTable } from '../lb-table.js';
import { canonicalAddress, encodeInetAddr } from './codec.js';
import { IpvsTableError } from './ipvs-table-error.js';

/** Marks of every-port VIPs: bit 30 set, then a 28-bit slot and the protocol; apart from published-port marks (< 2^18). */
export const EVERY_PORT_MARK_BASE = 0x40000000;

const SLOT_MASK = 0x0fffffff;

function markOfSlot(slot: number, protocol: L4Protocol): number {
  return (EVERY_PORT_MARK_BASE + slot * 2 + (protocol === 'udp' ? 1 : 0)) >>> 0;
}

/**
 * The fwmark that feeds an IPv4 every-port VIP: its slot is the address's low 28 bits, so every agent agrees without
 * allocating and overlay VIPs (unique within 10.0.0.0/8) never share one.
 */
export function everyPortMark(address: string, protocol: L4Protocol): number {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new IpvsTableError(`every-port VIP ${address} is not an IPv4 address (v6 VIPs take their marks from everyPortMarks)`);
  }
  const low28 = (((octets[0]! & 0x0f) << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  return markOfSlot(low28, protocol);
}

// A v6 address has no 28 bits that are unique on their own (every dual-stack network's VIPs share their /64's low
// bits), so its slot is a hash of all 128 bits, probed to the next free slot on a collision. v6 marks need only be
// unique among the v6 VIPs of one namespace: IPVS keys fwmark services by (family, mark) and ip6tables marks only v6
// packets, so they never meet the v4 ones.
function hashSlot(address: string): number {
  return createHash('sha256').update(encodeInetAddr('inet6', address)).digest().readUInt32BE(0) & SLOT_MASK;
}

/** Finds the mark of an every-port VIP of one table. */
export type EveryPortMarks = (address: string, protocol: L4Protocol) => number;

/**
 * The marks of a table's every-port VIPs. v4 ones are everyPortMark's; v6 ones get their hash slot, taken in address
 * order, so the same VIPs always get the same marks and a rare collision moves only the later address of the two.
 * Throws for a v6 address that does not parse, naming it.
 */
export function everyPortMarks(table: LbTable): EveryPortMarks {
  const v6 = new Set<string>();
  for (const vs of table.services) {
    const fe = vs.frontend;
    if (fe.kind === 'vip' && fe.port === 0 && fe.address.includes(':')) {
      try {
        v6.add(canonicalAddress('inet6', fe.address));
      } catch {
        // Left for validateLbTable to report with the service's id.
      }
    }
  }
  const slots = new Map<string, number>();
  const taken = new Set<number>();
  for (const address of [...v6].sort()) {
    let slot = hashSlot(address);
    while (taken.has(slot)) slot = (slot + 1) & SLOT_MASK;
    taken.add(slot);
    slots.set(address, slot);
  }
  return (address, protocol) => {
    if (!address.includes(':')) return everyPortMark(address, protocol);
    const canon = canonicalAddress('inet6', address);
    return markOfSlot(slots.get(canon) ?? hashSlot(canon), protocol);
  };
}
