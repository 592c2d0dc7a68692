import { z } from 'zod';
import type { Compare, KvStore, TxnOp } from '../store/kv-store.js';
import { ipKey, networkIpsPrefix } from '../model/keys.js';
import { chooseAddress, INGRESS_NETWORK } from '../model/ipam.js';
import { macForIpv4 } from '../sandbox/addresses.js';
import type { NetworkRecord } from '../model/records.js';

/** Each node's ingress sandbox address on the ingress network, held under the node's lease. */
export const INGRESS_ENDPOINTS = '/meshnet/ingress-endpoints/';

const IngressEndpointSchema = z.strictObject({
  node: z.string().min(1),
  ip: z.ipv4(),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
});

/** A node's ingress sandbox endpoint (Docker gives each node's ingress_sbox its own ingress address). */
export type IngressEndpoint = z.infer<typeof IngressEndpointSchema>;

/** Every node's ingress endpoint; invalid records are skipped and reported. */
export async function listIngressEndpoints(store: KvStore, onInvalid?: (key: string, err: string) => void): Promise<IngressEndpoint[]> {
  const { kvs } = await store.range(INGRESS_ENDPOINTS);
  const out: IngressEndpoint[] = [];
  for (const kv of kvs) {
    const parsed = IngressEndpointSchema.safeParse(safeJson(kv.value));
    if (parsed.success) out.push(parsed.data);
    else onInvalid?.(kv.key, parsed.error.message);
  }
  return out;
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/**
 * Claims an ingress address for `nodeId` (or returns the one it holds). The record and the IP
 * claim both ride on the node's lease, so a dead node's address frees itself.
 */
export async function claimIngressEndpoint(store: KvStore, nodeId: string, lease: string, ingress: NetworkRecord): Promise<IngressEndpoint> {
  const key = `${INGRESS_ENDPOINTS}${nodeId}`;
  for (let attempt = 0; attempt < 20; attempt++) {
    const existing = await store.get(key);
    if (existing) {
      const parsed = IngressEndpointSchema.safeParse(safeJson(existing.value));
      if (parsed.success && existing.lease === lease) return parsed.data;
    }
    const { kvs } = await store.range(networkIpsPrefix(INGRESS_NETWORK));
    const used = new Set(kvs.map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1)));
    used.add(ingress.gateway);
    const ip = chooseAddress(ingress.subnet, used, INGRESS_NETWORK, attempt);
    const record: IngressEndpoint = { node: nodeId, ip, mac: macForIpv4(ip) };
    const ops: TxnOp[] = [
      { type: 'put', key, value: JSON.stringify(record), lease },
      { type: 'put', key: ipKey(INGRESS_NETWORK, ip), value: `node:${nodeId}`, lease },
    ];
    const compare: Compare[] = [
      existing ? { key, modRevision: existing.modRevision } : { key, absent: true },
      { key: ipKey(INGRESS_NETWORK, ip), absent: true },
    ];
    if (existing) {
      // The node re-registered under a new lease: give back the address the old lease held.
      const old = IngressEndpointSchema.safeParse(safeJson(existing.value));
      if (old.success) ops.push({ type: 'delete', key: ipKey(INGRESS_NETWORK, old.data.ip) });
    }
    const res = await store.txn({ compare, success: ops });
    if (res.succeeded) return record;
  }
  throw new Error(`could not claim an ingress address for node ${nodeId}: the ingress network is busy or full; retry`);
}
