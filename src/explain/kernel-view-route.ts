import { z } from 'zod';
import type { KernelViewRequest, NodeKernelView } from './kernel-view.js';
import { readNodeKernelView, type NodeLocation, type NodeViewReadOptions } from './node-view-reader.js';

/** What the agent gives the route: its node, where its namespaces are, and its attached tasks' namespaces. */
export interface KernelViewRouteDeps extends NodeViewReadOptions {
  node: string;
  location: NodeLocation;
  /** Reads the views (default: this machine's namespaces); tests pass a fake. */
  read?: (node: string, where: NodeLocation, request: KernelViewRequest, opts: NodeViewReadOptions) => Promise<NodeKernelView>;
}

/** A route's answer: status and a JSON body. */
export interface RouteResponse {
  status: number;
  body: unknown;
}

const NETWORK = /^[a-z0-9][a-z0-9_.-]{0,39}$/;
const TASK_ID = /^[a-z0-9]{8,64}$/;

const Query = z.strictObject({
  host: z.enum(['0', '1']).optional(),
  sbox: z.enum(['0', '1']).optional(),
  /** 1: also the v6 side of the host and the sandbox. */
  v6: z.enum(['0', '1']).optional(),
  /** Comma-separated network names. */
  overlays: z.string().optional(),
  /** Comma-separated task ids; `id+lb` also reads the task's nftables table. */
  tasks: z.string().optional(),
});

/** Parses the query string of GET /v1/kernel-view into a request; throws with what is wrong. Pure. */
export function parseKernelViewQuery(query: URLSearchParams): KernelViewRequest {
  const parsed = Query.safeParse(Object.fromEntries(query));
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; '));
  const q = parsed.data;
  const list = (s: string | undefined) => (s ? s.split(',').filter(Boolean) : []);
  const overlays = list(q.overlays);
  for (const n of overlays) if (!NETWORK.test(n)) throw new Error(`overlays: ${JSON.stringify(n)} is not a network name`);
  const tasks = list(q.tasks).map((t) => {
    const [id, flag] = t.split('+');
    if (!TASK_ID.test(id ?? '') || (flag !== undefined && flag !== 'lb' && flag !== 'lb6')) throw new Error(`tasks: ${JSON.stringify(t)} is not a task id (optionally +lb or +lb6)`);
    return flag ? { id: id!, [flag]: true } : { id: id! };
  });
  return { host: q.host === '1', sbox: q.sbox === '1', overlays, tasks, ...(q.v6 === '1' ? { v6: true } : {}) };
}

/** The query string for a request (what the remote source sends). Pure. */
export function kernelViewQuery(r: KernelViewRequest): URLSearchParams {
  const q = new URLSearchParams();
  if (r.host) q.set('host', '1');
  if (r.sbox) q.set('sbox', '1');
  if (r.v6) q.set('v6', '1');
  if (r.overlays?.length) q.set('overlays', r.overlays.join(','));
  if (r.tasks?.length) q.set('tasks', r.tasks.map((t) => (t.lb6 ? `${t.id}+lb6` : t.lb ? `${t.id}+lb` : t.id)).join(','));
  return q;
}

/**
 * The handler the agent API serves as GET /v1/kernel-view: this node's read-only kernel view for
 * the namespaces the query names (400 on a malformed query). Reads only; writes nothing.
 */
export function kernelViewRoute(deps: KernelViewRouteDeps): (query: URLSearchParams) => Promise<RouteResponse> {
  const read = deps.read ?? readNodeKernelView;
  return async (query) => {
    let request: KernelViewRequest;
    try {
      request = parseKernelViewQuery(query);
    } catch (err) {
      return { status: 400, body: { error: `bad kernel-view query: ${(err as Error).message}` } };
    }
    const opts: NodeViewReadOptions = deps.externalSandbox ? { externalSandbox: deps.externalSandbox } : {};
    return { status: 200, body: await read(deps.node, deps.location, request, opts) };
  };
}
