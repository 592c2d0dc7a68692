import type { NetworkRecord, NodeRecord, ServiceRecord, TaskRecord } from '../model/records.js';
import type { IngressEndpoint } from '../agent/ingress-endpoint.js';
import type { LinkView, NodeKernelView } from './kernel-view.js';
import { cidrContains } from '../sandbox/addresses.js';

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

/** The link holding `ip` among `links`. */
export function linkWithAddress(links: readonly LinkView[], ip: string): LinkView | undefined {
  return links.find((l) => l.addresses.some((a) => a.split('/')[0] === ip));
}

/** The link whose subnet contains `ip` (a bridge the address is reached through). */
export function linkForSubnet(links: readonly LinkView[], ip: string): LinkView | undefined {
  return links.find((l) => l.addresses.some((a) => cidrContains(a, ip)));
}

/** One line for a link: name, addresses, MTU, state. */
export function linkText(l: LinkView): string {
  return `${l.name}${l.kind ? ` (${l.kind})` : ''} ${l.addresses.join(' ') || 'no address'} mtu ${l.mtu} ${l.up ? 'up' : 'DOWN'}`;
}

/** `nsenter --net=PATH -- ` for fixes that name a command to run in a namespace. */
export function inNs(path: string): string {
  return path === 'self' ? '' : `nsenter --net=${path} -- `;
}
