import type { Explanation } from './explanation.js';
import type { ClusterFacts } from './cluster-facts.js';
import type { KernelViewSource, NodeKernelView } from './kernel-view.js';
import { viewRequests, type ExplainQuery } from './explain-query.js';
import { explainPublished } from './explain-published.js';
import { explainVip } from './explain-vip.js';
import { explainVip6 } from './explain-vip6.js';
import { isIpv6 } from '../model/ipv6.js';

/**
 * Reads the kernel views a query needs (every node at once) and explains each target. A node
 * that cannot be read is named in the hops that needed it instead of failing the whole answer.
 */
export async function runExplain(q: ExplainQuery, facts: ClusterFacts, source: KernelViewSource): Promise<Explanation[]> {
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

/** Pure: the explanations of a query from views already read. */
export function explainViews(q: ExplainQuery, facts: ClusterFacts, views: ReadonlyMap<string, NodeKernelView>, unreadable: ReadonlyMap<string, string> = new Map()): Explanation[] {
  if (q.kind === 'vip') return [(isIpv6(q.target.vip) ? explainVip6 : explainVip)(facts, views, unreadable, q.target)];
  return q.targets.map((t) => explainPublished(facts, views, unreadable, t));
}
