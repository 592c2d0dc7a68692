import { CliError, EXIT, printJson, withCluster, type StoreChoice } from '../cli-context.js';
import { defaultStoreAddress } from '../../store/open-store.js';
import { INGRESS_ENDPOINTS, parseIngressEndpoints } from '../../agent/ingress-endpoint.js';
import { ExplainError } from '../../explain/explain-errors.js';
import { parseTarget, resolveQuery } from '../../explain/explain-query.js';
import { runExplain } from '../../explain/explain-run.js';
import { renderExplanation } from '../../explain/explain-render.js';
import { discoverLocalAgents } from '../../explain/agent-discovery.js';
import { LocalKernelViewSource } from '../../explain/local-source.js';
import { FirstAvailableSource, RemoteKernelViewSource } from '../../explain/remote-source.js';
import { readNodeStatuses } from '../../agent/node-status.js';
import { resolveApiTls } from '../../api/api-tls.js';
import type { ClusterFacts } from '../../explain/cluster-facts.js';
import type { NodeLocation } from '../../explain/node-view-reader.js';

/** What `meshnet explain` does; loaded only when it runs (its kernel readers pull in netlink and koffi). */
export async function explainAction(storeOption: () => StoreChoice, text: string, o: { from?: string; size?: string; node?: string; json?: boolean }): Promise<void> {
  await withCluster(storeOption(), async (cluster, store) => {
    try {
      const [snapshot, endpoints] = await Promise.all([cluster.snapshot(), store.range(INGRESS_ENDPOINTS)]);
      const facts: ClusterFacts = {
        nodes: snapshot.nodes,
        networks: snapshot.networks,
        services: snapshot.services,
        tasks: snapshot.tasks,
        ingressEndpoints: parseIngressEndpoints(new Map(endpoints.kvs.map((kv) => [kv.key, kv.value]))),
      };
      const query = resolveQuery(parseTarget(text), facts, { ...(o.from !== undefined ? { from: o.from } : {}), ...(o.size !== undefined ? { size: Number(o.size) } : {}), ...(o.node !== undefined ? { node: o.node } : {}) });
      const local = new LocalKernelViewSource(localNodes(storeOption()), {
        externalSandbox: (id) => {
          const t = facts.tasks.find((x) => x.id === id);
          return t?.external ? t.sandbox : undefined;
        },
      });
      // Nodes on other machines answer through their agent API, with the cluster's client certificate.
      const apis = new Map((await readNodeStatuses(store)).flatMap((st) => (st.api ? [[st.node, st.api] as const] : [])));
      const source = new FirstAvailableSource([local, new RemoteKernelViewSource(apis, resolveApiTls({}, storeOption().options.etcd?.tls))]);
      const explanations = await runExplain(query, facts, source);
      if (o.json) printJson({ target: text, explanations });
      else console.log(explanations.map(renderExplanation).join('\n\n'));
      if (explanations.some((e) => e.verdict !== 'delivered')) process.exitCode = EXIT.failed;
    } catch (err) {
      if (err instanceof ExplainError) throw new CliError(err.message, err.usage ? EXIT.usage : EXIT.failed);
      throw err;
    }
  });
}

/** Nodes whose agents run on this machine against the same store: their namespaces can be read from here. */
function localNodes(store: StoreChoice): Map<string, NodeLocation> {
  const mine = store.address ?? defaultStoreAddress();
  const out = new Map<string, NodeLocation>();
  // Newest last: a restarted agent's location wins over one still exiting.
  for (const a of discoverLocalAgents()) if ((a.store ?? defaultStoreAddress()) === mine) out.set(a.node, { hostNetns: a.hostNetns, netnsDir: a.netnsDir });
  return out;
}
