import type { Explanation } from './explanation.js';
import type { ClusterFacts } from './cluster-facts.js';
import type { KernelViewSource, NodeKernelView } from './kernel-view.js';
import { locatedQuery, viewRequests, type ExplainQuery } from './explain-query.js';
import { linkWithAddress, linksV6 } from './cluster-facts.js';
import { explainPublished } from './explain-published.js';
import { explainVip } from './explain-vip.js';
import { explainVip6 } from './explain-vip6.js';
import { isIpv6 } from '../model/ipv6.js';

/**
 * Reads the kernel views a query needs (every node at once) and explains each target. A node
 * that cannot be read is named in the hops that needed it instead of failing the whole answer.
 */
export async function runExplain(query: ExplainQuery, facts: ClusterFacts, source: KernelViewSource): Promise<Explanation[]> {
  const q = query.kind === 'locate6' ? await locate6(query, facts, source) : query;
  const requests = viewRequests(q, facts);
  const views = new Map<string, NodeKernelView>();
  const unreadable = new Map<string, string>();
  await Promise.all(
    [...requests].map(async ([node, request]) => {
      try {
        views.set(node, await source.read(node, request));
      } catch (err) {
        unreadable.set(node, (err as Error).message);
      }
    }),
  );
  return explainViews(q, facts, views, unreadable);
}

/** Finds the node holding a [V6]:PORT target's address by reading every node's host links (their v6 side). */
async function locate6(q: Extract<ExplainQuery, { kind: 'locate6' }>, facts: ClusterFacts, source: KernelViewSource): Promise<ExplainQuery> {
  const held = new Set<string>();
  await Promise.all(
    [...viewRequests(q, facts)].map(async ([node, request]) => {
      const host = await source.read(node, request).then((v) => v.host, () => undefined);
      if (host && linkWithAddress(linksV6(host.links), q.address6)) held.add(node);
    }),
  );
  return locatedQuery(q, held);
}

/** Pure: the explanations of a query from views already read. */
export function explainViews(q: ExplainQuery, facts: ClusterFacts, views: ReadonlyMap<string, NodeKernelView>, unreadable: ReadonlyMap<string, string> = new Map()): Explanation[] {
  if (q.kind === 'vip') return [(isIpv6(q.target.vip) ? explainVip6 : explainVip)(facts, views, unreadable, q.target)];
  if (q.kind === 'locate6') throw new Error('explainViews: a locate6 query is resolved to its node first (runExplain)');
  return q.targets.map((t) => explainPublished(facts, views, unreadable, t));
}
