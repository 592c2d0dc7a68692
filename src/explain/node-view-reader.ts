import { join } from 'node:path';
import { INGRESS_SBOX, taskNetnsName } from '../agent/node-plan.js';
import { overlayNetnsName } from '../overlay/overlay-state.js';
import { readBase, readConntrack, readIp6Table, readIptables, readLbTable, readListening, readVxlanEntries } from './namespace-reader.js';
import { readIpvsTable } from './ipvs-view-reader.js';
import type { HostView, KernelViewRequest, LbTableView, NodeKernelView, OverlayView, SboxView, TaskView } from './kernel-view.js';

/** Where a node's namespaces are on this machine: what its agent was started with. */
export interface NodeLocation {
  /** The host namespace file; null: the namespace this process runs in. */
  hostNetns: string | null;
  /** The agent's --netns-dir (tasks, overlays, ingress_sbox). */
  netnsDir: string;
}

/** Options of a read: namespaces of attached (external) tasks, which are not under the netns dir. */
export interface NodeViewReadOptions {
  externalSandbox?: (taskId: string) => string | undefined;
}

/** Reads what `request` names on one node whose namespaces are reachable from this process. Read-only. */
export async function readNodeKernelView(node: string, where: NodeLocation, request: KernelViewRequest, opts: NodeViewReadOptions = {}): Promise<NodeKernelView> {
  const view: NodeKernelView = { node, readAt: new Date().toISOString(), overlays: [], tasks: [] };
  const v6 = request.v6 === true;
  if (request.host) {
    const base = await readBase(where.hostNetns, { v6 });
    const host: HostView = { ...base, iptables: base.exists ? await readIptables(where.hostNetns, base.errors) : {} };
    if (v6 && base.exists) host.ip6tables = await readIptables(where.hostNetns, base.errors, 'ipv6');
    view.host = host;
  }
  if (request.sbox) {
    const path = join(where.netnsDir, INGRESS_SBOX);
    const base = await readBase(path, { v6 });
    const sbox: SboxView = { ...base, lb: null, conntrack: [] };
    if (base.exists) {
      sbox.lb = await readBalancer(path, sbox.errors);
      sbox.conntrack = readConntrack(path, sbox.errors);
      if (v6) sbox.lb6 = await readIp6Table(path, sbox.errors);
    }
    view.sbox = sbox;
  }
  for (const network of [...new Set(request.overlays ?? [])].sort()) {
    const path = join(where.netnsDir, overlayNetnsName(network));
    const base = await readBase(path);
    const ov: OverlayView = { ...base, network, fdb: [], neighbors: [] };
    if (base.exists) Object.assign(ov, await readVxlanEntries(path, ov.errors));
    view.overlays.push(ov);
  }
  const seen = new Set<string>();
  for (const t of request.tasks ?? []) {
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    const path = opts.externalSandbox?.(t.id) ?? join(where.netnsDir, taskNetnsName(t.id));
    const base = await readBase(path, { v6 });
    const task: TaskView = { ...base, taskId: t.id, nat: {}, listening: { tcp: [], udp: [] } };
    if (base.exists) {
      task.nat = (await readIptables(path, task.errors))['nat'] ?? {};
      task.listening = readListening(path, task.errors);
      if (t.lb) task.lb = await readBalancer(path, task.errors);
      if (t.lb6) task.lb6 = await readIp6Table(path, task.errors);
      // An IPVS node balances v6 VIPs in IPVS (AF_INET6 fwmark services), not in ip6 meshnet6.
      if (t.lb6 && task.lb6 === null && !t.lb) task.lb = await readIpvsTable(path, task.errors);
    }
    view.tasks.push(task);
  }
  return view;
}

/** The namespace's load-balancing table: the meshnet nftables table, else (IPVS nodes) its IPVS services. */
async function readBalancer(path: string, errors: string[]): Promise<LbTableView | null> {
  return (await readLbTable(path, errors)) ?? (await readIpvsTable(path, errors));
}
