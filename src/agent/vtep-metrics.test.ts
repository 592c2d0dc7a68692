import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { VtepPeerStatus } from '../overlay/vtep-liveness.js';
import { registerVtepMetrics } from './vtep-metrics.js';

describe('meshnet_vtep_unreachable', () => {
  it('is 1 per unreachable peer and 0 for the others, read at each scrape', async () => {
    const registry = new Registry();
    let peers: VtepPeerStatus[] = [
      { peer: 'host-b', state: 'reachable', misses: 0 },
      { peer: 'host-c', state: 'unreachable', misses: 3 },
      { peer: 'host-d', state: 'unknown', misses: 5 },
    ];
    registerVtepMetrics(registry, () => peers);
    const text = await registry.metrics();
    expect(text).toContain('meshnet_vtep_unreachable{peer="host-b"} 0');
    expect(text).toContain('meshnet_vtep_unreachable{peer="host-c"} 1');
    expect(text).toContain('meshnet_vtep_unreachable{peer="host-d"} 0');
    peers = [{ peer: 'host-b', state: 'reachable', misses: 0 }];
    const later = await registry.metrics();
    expect(later).not.toContain('host-c');
  });
});
