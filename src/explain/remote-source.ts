import { ApiClient } from '../api/api-client.js';
import type { ApiTlsSource } from '../api/api-tls.js';
import { KernelViewUnavailableError } from './explain-errors.js';
import type { KernelViewRequest, KernelViewSource, NodeKernelView } from './kernel-view.js';
import { kernelViewQuery } from './kernel-view-route.js';

/**
 * Reads a node's kernel view through its agent API (GET /v1/kernel-view), for nodes whose namespaces
 * are not on this machine; `endpoints` are what each agent advertises in its node status.
 */
export class RemoteKernelViewSource implements KernelViewSource {
  constructor(
    private readonly endpoints: ReadonlyMap<string, string>,
    private readonly tls: ApiTlsSource | undefined,
  ) {}

  /** Asks the node's agent; KernelViewUnavailableError when it advertises no API or does not answer. */
  async read(node: string, request: KernelViewRequest): Promise<NodeKernelView> {
    const endpoint = this.endpoints.get(node);
    if (!endpoint) throw new KernelViewUnavailableError(node, 'its agent advertises no API endpoint (is it running?)');
    try {
      return await new ApiClient(endpoint, { tls: this.tls }).getJson<NodeKernelView>(`/v1/kernel-view?${kernelViewQuery(request)}`);
    } catch (err) {
      throw new KernelViewUnavailableError(node, `its agent API at ${endpoint} did not answer: ${(err as Error).message}`);
    }
  }
}

/** Reads from the first source that has the node: this machine's namespaces, then the node's agent. */
export class FirstAvailableSource implements KernelViewSource {
  constructor(private readonly sources: readonly KernelViewSource[]) {}

  /** The view from the first source that can read `node`. */
  async read(node: string, request: KernelViewRequest): Promise<NodeKernelView> {
    let last: unknown;
    for (const s of this.sources) {
      try {
        return await s.read(node, request);
      } catch (err) {
        if (!(err instanceof KernelViewUnavailableError)) throw err;
        last = err;
      }
    }
    throw last;
  }
}
