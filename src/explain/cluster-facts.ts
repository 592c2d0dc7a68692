import type { NetworkRecord, NodeRecord, ServiceRecord, TaskRecord } from '../model/records.js';
import type { IngressEndpoint } from '../agent/ingress-endpoint.js';
import type { LinkView, NodeKernelView } from './kernel-view.js';
import { cidrContains } from '../sandbox/addresses.js';
import ipaddr from 'ipaddr.js';
import { canonicalIpv6, isIpv6 } from '../model/ipv6.js';

/** The intent explain compares the kernel with: what the store says, read once. */
export interface ClusterFacts {
  nodes: NodeRecord[];
  networks: NetworkRecord[];
  services: ServiceRecord[];
  tasks: TaskRecord[];
  ingressEndpoints: IngressEndpoint[];
}

/** Kernel views by node name. */
export type Views = ReadonlyMap<string, NodeKernelView>;

/** A task's name as people use it (web.2). */
export function taskName(t: Pick<TaskRecord, 'service' | 'slot'>): string {
  return `${t.service}.${t.slot}`;
}

/** An address in one spelling per address: v6 ones canonical (the kernel, ip6tables and nft may spell them differently). */
export function sameIp(a: string, b: string): boolean {
  if (a === b) return true;
  return isIpv6(a) && isIpv6(b) && canonicalIpv6(a) === canonicalIpv6(b);
}

/** The link holding `ip` among `links` (v4 or v6: links of a v6 view carry their v6 addresses, see linksV6). */
export function linkWithAddress(links: readonly LinkView[], ip: string): LinkView | undefined {
  // A v6 underlay's address is among the link's v6 addresses (views from agents that read them).
  return links.find((l) => [...l.addresses, ...(l.addresses6 ?? [])].some((a) => sameIp(a.split('/')[0]!, ip)));
}

/** The link whose subnet contains `ip` (a bridge the address is reached through). */
export function linkForSubnet(links: readonly LinkView[], ip: string): LinkView | undefined {
  const v6 = isIpv6(ip);
  return links.find((l) => l.addresses.some((a) => (v6 ? onLink6(a, ip) : !a.includes(':') && cidrContains(a, ip))));
}

/** True when v6 `ip` is in the prefix of an interface address (`fd00::1/64`: host bits set, as links hold them). */
function onLink6(cidr: string, ip: string): boolean {
  const [addr, len] = cidr.split('/');
  if (!addr || !isIpv6(addr) || !/^\d{1,3}$/.test(len ?? '')) return false;
  return ipaddr.IPv6.parse(ip).match(ipaddr.IPv6.parse(addr), Number(len));
}

/** The links as their v6 side: each with its v6 addresses in place of its v4 ones (empty when they were not read). */
export function linksV6(links: readonly LinkView[]): LinkView[] {
  return links.map((l) => ({ ...l, addresses: l.addresses6 ?? [] }));
}

/** One line for a link: name, addresses, MTU, state. */
export function linkText(l: LinkView): string {
  return `${l.name}${l.kind ? ` (${l.kind})` : ''} ${l.addresses.join(' ') || 'no address'} mtu ${l.mtu} ${l.up ? 'up' : 'DOWN'}`;
}

/** `nsenter --net=PATH -- ` for fixes that name a command to run in a namespace. */
export function inNs(path: string): string {
  return path === 'self' ? '' : `nsenter --net=${path} -- `;
}
