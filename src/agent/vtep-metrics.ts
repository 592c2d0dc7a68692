import { Gauge, type Registry } from 'prom-client';
import type { VtepPeerStatus } from '../overlay/vtep-liveness.js';

/**
 * meshnet_vtep_unreachable{peer}: 1 while a peer's VTEP does not answer over the overlay (its backends
 * are out of this node's tables), 0 while it answers or was never heard. Read at scrape time from
 * `peers`, so probing costs the agent nothing for metrics.
 */
export function registerVtepMetrics(registry: Registry, peers: () => readonly VtepPeerStatus[]): void {
  const gauge: Gauge<'peer'> = new Gauge({
    name: 'meshnet_vtep_unreachable',
    help: "1 while a peer node's VTEP misses the echo probes sent over the ingress overlay (--vtep-probe-interval-ms); its backends are then out of this node's tables.",
    labelNames: ['peer'],
    registers: [registry],
    collect: () => {
      gauge.reset();
      for (const p of peers()) gauge.set({ peer: p.peer }, p.state === 'unreachable' ? 1 : 0);
    },
  });
}
