import type { ServiceRecord, TaskRecord } from '../model/records.js';
import type { VirtualService } from '../vip/lb-table.js';
import { vipFrontends } from './vip-frontends.js';

/**
 * A service's v6 VIP frontends on one dual-stack network (none elsewhere): every TCP and UDP port, as the v4 VIP,
 * over the tasks' v6 addresses with the weights the v4 frontends use. The id's scope ends in "/6" so it never
 * equals a v4 frontend's.
 */
export function ipv6Frontends(svc: ServiceRecord, network: string, tasks: readonly TaskRecord[], weights: readonly (number | null)[]): VirtualService[] {
  const vip6 = svc.vips6?.[network];
  if (vip6 === undefined) return [];
  return vipFrontends(svc, `${network}/6`, vip6, tasks, weights, (t) => t.addresses[network]?.ip6);
}
