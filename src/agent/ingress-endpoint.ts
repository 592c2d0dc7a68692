import { z } from 'zod';
import type { Compare, KvStore, TxnOp } from '../store/kv-store.js';
import { ingressEndpointKey, ipKey, networkIpsPrefix } from '../model/keys.js';
import { chooseAddress, INGRESS_NETWORK } from '../model/ipam.js';
import { macForIpv4 } from '../sandbox/addresses.js';
import type { NetworkRecord } from '../model/records.js';

export { INGRESS_ENDPOINTS } from '../model/keys.js';

const IngressEndpointSchema = z.strictObject({
  node: z.string().min(1),
  ip: z.ipv4(),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
});

/** A node's ingress sandbox endpoint (Docker gives each node's ingress_sbox its own ingress address). */
export type IngressEndpoint = z.infer<typeof IngressEndpointSchema>;

/** Every node's ingress endpoint, from the raw records under INGRESS_ENDPOINTS; invalid ones are skipped and reported. */
export function parseIngressEndpoints(raw: ReadonlyMap<string, string>, onInvalid?: (key: string, err: string) => void): IngressEndpoint[] {
  const out: IngressEndpoint[] = [];
  for (const [key, value] of raw) {
    const parsed = IngressEndpointSchema.safeParse(safeJson(value));
    if (parsed.success) out.push(parsed.data);
    else onInvalid?.(key, parsed.error.message);
  }
  return out.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/**
 * Claims an ingress address for `nodeId` (or returns the one it holds). The claim outlives the node's
 * lease on purpose: a node that restarts or comes back keeps its address, so no peer ever has to
 * re-learn it, and a dead node's address is never handed to another node while some host may
 * still send traffic to it. Peers use only the endpoints of live nodes.
 */
export async function claimIngressEndpoint(store: KvStore, nodeId: string, ingress: NetworkRecord): Promise<IngressEndpoint> {
  const key = ingressEndpointKey(nodeId);
  const owner = `node:${nodeId}`;
  for (let attempt = 0; attempt < 20; attempt++) {
    const existing = await store.get(key);
    const old = existing ? IngressEndpointSchema.safeParse(safeJson(existing.value)) : undefined;
    const oldClaim = old?.success ? await store.get(ipKey(INGRESS_NETWORK, old.data.ip)) : undefined;
    // Ours already, and not riding on a lease (records written by earlier versions were): done.
    if (old?.success && existing!.lease === undefined && oldClaim?.value === owner && oldClaim.lease === undefined) return old.data;
    let ip: string;
    if (old?.success && (oldClaim === undefined || oldClaim.value === owner)) {
      ip = old.data.ip;
    } else {
      const { kvs } = await store.range(networkIpsPrefix(INGRESS_NETWORK));
      const used = new Set(kvs.map((kv) => kv.key.slice(kv.key.lastIndexOf('/') + 1)));
      used.add(ingress.gateway);
      ip = chooseAddress(ingress.subnet, used, INGRESS_NETWORK, attempt);
    }
    const claimKey = ipKey(INGRESS_NETWORK, ip);
    const currentClaim = ip === old?.data?.ip ? oldClaim : undefined;
    const record: IngressEndpoint = { node: nodeId, ip, mac: macForIpv4(ip) };
    const ops: TxnOp[] = [
      { type: 'put', key, value: JSON.stringify(record) },
      { type: 'put', key: claimKey, value: owner },
    ];
    const compare: Compare[] = [
      existing ? { key, modRevision: existing.modRevision } : { key, absent: true },
      currentClaim ? { key: claimKey, modRevision: currentClaim.modRevision } : { key: claimKey, absent: true },
    ];
    const res = await store.txn({ compare, success: ops });
    if (res.succeeded) return record;
  }
  throw new Error(`could not claim an ingress address for node ${nodeId}: the ingress network is busy or full; retry`);
}
