import { KernelViewUnavailableError } from './explain-errors.js';
import type { KernelViewRequest, KernelViewSource, NodeKernelView } from './kernel-view.js';
import { readNodeKernelView, type NodeLocation, type NodeViewReadOptions } from './node-view-reader.js';

/**
 * Reads nodes whose namespaces live on this machine: the node explain runs on, or every host of a
 * lab. The agent API's source (GET /v1/kernel-view on each node) replaces it for remote nodes.
 */
export class LocalKernelViewSource implements KernelViewSource {
  constructor(
    private readonly locations: ReadonlyMap<string, NodeLocation>,
    private readonly opts: NodeViewReadOptions = {},
  ) {}

  /** Reads `request` on `node`, or throws KernelViewUnavailableError when its namespaces are not here. */
  async read(node: string, request: KernelViewRequest): Promise<NodeKernelView> {
    const where = this.locations.get(node);
    if (!where) throw new KernelViewUnavailableError(node, 'no meshnet agent for it runs on this machine');
    return readNodeKernelView(node, where, request, this.opts);
  }
}
