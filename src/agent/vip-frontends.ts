import type { ServiceRecord, TaskRecord } from '../model/records.js';
import type { LbBackendTarget, VirtualService } from '../vip/lb-table.js';
import { lbServiceId } from '../vip/service-id.js';

/**
 * A service's VIP `vip` forwarding every TCP and UDP port (port 0, each connection keeping its
 * destination port, as Swarm's VIPs do) to the tasks' addresses that `addressOf` gives, with the
 * weights of `weights` (null: not a backend). `scope` names the frontends within the service.
 */
export function vipFrontends(
  svc: ServiceRecord,
  scope: string,
  vip: string,
  tasks: readonly TaskRecord[],
  weights: readonly (number | null)[],
  addressOf: (t: TaskRecord) => string | undefined,
): VirtualService[] {
  const byAddress = new Map<string, LbBackendTarget>();
  tasks.forEach((t, i) => {
    const address = addressOf(t);
    const weight = weights[i];
    if (!address || weight === null || weight === undefined) return;
    // Two records for one address (a restarted task reusing it): the running one wins.
    const prev = byAddress.get(address);
    if (!prev || weight > prev.weight) byAddress.set(address, { address, port: 0, weight });
  });
  const backends = [...byAddress.values()];
  return (['tcp', 'udp'] as const).map((protocol) => ({
    id: lbServiceId(svc.name, svc.name, scope, protocol, 0),
    frontend: { kind: 'vip' as const, address: vip, protocol, port: 0 },
    scheduler: svc.lb.scheduler,
    ...(svc.lb.affinity ? { persistenceSeconds: svc.lb.affinity.timeoutSeconds } : {}),
    backends,
  }));
}
