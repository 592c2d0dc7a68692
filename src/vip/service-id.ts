import { createHash } from 'node:crypto';
import type { L4Protocol } from './lb-table.js';

function slug(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return (s || 'svc').slice(0, 20);
}

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 10);
}

/**
 * A stable id for one frontend of a service: readable prefix, a hash of the service id and the
 * network (so renames keep it and equal names do not collide), protocol and port. Matches
 * [a-z0-9_-]{1,48}, so it is safe as an nft chain name suffix.
 */
export function lbServiceId(serviceId: string, serviceName: string, scope: string, protocol: L4Protocol, port: number): string {
  return `${slug(serviceName)}-${shortHash(serviceId, scope)}-${protocol}${port}`;
}
