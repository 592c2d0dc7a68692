import { describe, expect, it } from 'vitest';
import { AgentConfigSchema } from './agent-config.js';

const base = {
  nodeName: 'host-a',
  advertiseAddr: '192.0.2.1',
  store: 'sqlite:/tmp/x.db',
  hostNetns: null,
  netnsDir: '/run/meshnet/netns',
  stateDir: '/run/meshnet',
  lbBackend: 'auto',
  gwbridgeName: 'meshnet_gwbr',
  allowDockerIngressTakeover: false,
  drainSeconds: 2,
  resyncSeconds: 30,
  leaseTtlSeconds: 10,
  dnsUpstreams: [],
};

describe('AgentConfigSchema vtepProbeIntervalMs', () => {
  it('probes every 400 ms unless told otherwise, and takes 0 for no probes', () => {
    expect(AgentConfigSchema.parse(base).vtepProbeIntervalMs).toBe(400);
    expect(AgentConfigSchema.parse({ ...base, vtepProbeIntervalMs: 0 }).vtepProbeIntervalMs).toBe(0);
    expect(AgentConfigSchema.parse({ ...base, vtepProbeIntervalMs: 250 }).vtepProbeIntervalMs).toBe(250);
  });

  it('refuses intervals that would flood or never judge, saying what it takes', () => {
    for (const bad of [10, -1, 60_001, 1.5, Number.NaN]) {
      const r = AgentConfigSchema.safeParse({ ...base, vtepProbeIntervalMs: bad });
      expect(r.success, String(bad)).toBe(false);
      expect(r.error!.issues[0]!.path).toEqual(['vtepProbeIntervalMs']);
    }
    const r = AgentConfigSchema.safeParse({ ...base, vtepProbeIntervalMs: 10 });
    expect(r.error!.issues[0]!.message).toBe('give 0 (no probes) or milliseconds from 50 to 60000');
  });
});
