import type { ServiceRecord, TaskRecord } from '../model/records.js';
import type { LbBackendTarget, VirtualService } from '../vip/lb-table.js';
import { lbServiceId } from '../vip/service-id.js';

/**
 * A service's v6 VIP frontends on one dual-stack network (none elsewhere): every TCP and UDP port, as the v4 VIP,
 * over the tasks' v6 addresses with the weights the v4 frontends use. The id's scope ends in "/6" so it never
 * equals a v4 frontend's.
 */
export function ipv6Frontends(svc: ServiceRecord, network: string, tasks: readonly TaskRecord[], weights: readonly (number | null)[]): VirtualService[] {
  const vip6 = svc.vips6?.[network];
  if (vip6 === undefined) return [];
  const byAddress = new Map<string, LbBackendTarget>();
  tasks.forEach((t, i) => {
    const address = t.addresses[network]?.ip6;
    const weight = weights[i];
    if (!address || weight === null || weight === undefined) return;
    const prev = byAddress.get(address);
    if (!prev || weight > prev.weight) byAddress.set(address, { address, port: 0, weight });
  });
  const backends = [...byAddress.values()];
  return (['tcp', 'udp'] as const).map((protocol) => ({
    id: lbServiceId(svc.name, svc.name, `${network}/6`, protocol, 0),
    frontend: { kind: 'vip' as const, address: vip6, protocol, port: 0 },
    scheduler: svc.lb.scheduler,
    ...(svc.lb.affinity ? { persistenceSeconds: svc.lb.affinity.timeoutSeconds } : {}),
    backends,
  }));
}
