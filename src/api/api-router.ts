/** HTTP methods the agent API routes. */
export type ApiMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A matched route: its value and the `:name` segments of its pattern. */
export interface RouteMatch<T> {
  value: T;
  params: Record<string, string>;
}

interface Route<T> {
  method: ApiMethod;
  segments: string[];
  value: T;
}

/**
 * Method and path patterns (`/v1/tasks/:id/logs`) to handlers. Hand-written: a handful of fixed
 * routes matched segment by segment need no router library.
 */
export class RouteTable<T> {
  private readonly routes: Route<T>[] = [];

  /** Adds a route; a second route for the same method and pattern is refused. */
  add(method: ApiMethod, pattern: string, value: T): void {
    if (!pattern.startsWith('/')) throw new Error(`route pattern ${JSON.stringify(pattern)} must start with /`);
    const segments = pattern.split('/').slice(1);
    const shape = (s: string[]) => s.map((x) => (x.startsWith(':') ? ':' : x)).join('/');
    if (this.routes.some((r) => r.method === method && shape(r.segments) === shape(segments))) throw new Error(`route ${method} ${pattern} is already taken`);
    this.routes.push({ method, segments, value });
  }

  /** The route for a request, `undefined` when none; `methodNotAllowed` when the path exists for another method. */
  match(method: string, path: string): RouteMatch<T> | 'methodNotAllowed' | undefined {
    const parts = path.split('/').slice(1);
    let other = false;
    for (const r of this.routes) {
      const params = matchSegments(r.segments, parts);
      if (!params) continue;
      if (r.method === method) return { value: r.value, params };
      other = true;
    }
    return other ? 'methodNotAllowed' : undefined;
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const v = parts[i]!;
    if (p.startsWith(':')) {
      if (v === '') return undefined;
      try {
        params[p.slice(1)] = decodeURIComponent(v);
      } catch {
        return undefined;
      }
    } else if (p !== v) return undefined;
  }
  return params;
}
