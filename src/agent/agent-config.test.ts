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

describe('AgentConfigSchema dnsWorkers', () => {
  it('answers names with two workers unless told otherwise', () => {
    expect(AgentConfigSchema.parse(base).dnsWorkers).toBe(2);
    expect(AgentConfigSchema.parse({ ...base, dnsWorkers: 1 }).dnsWorkers).toBe(1);
  });

  it('refuses counts that are not 1 to 16 whole workers', () => {
    for (const bad of [0, 17, 1.5, Number.NaN]) {
      const r = AgentConfigSchema.safeParse({ ...base, dnsWorkers: bad });
      expect(r.success, String(bad)).toBe(false);
      expect(r.error!.issues[0]!.path).toEqual(['dnsWorkers']);
    }
  });
});

describe('AgentConfigSchema advertiseAddr', () => {
  it('takes a v4 address as before, and a v6 unicast in canonical text (a v6 underlay)', () => {
    expect(AgentConfigSchema.parse(base).advertiseAddr).toBe('192.0.2.1');
    expect(AgentConfigSchema.parse({ ...base, advertiseAddr: '2001:DB8:0::11' }).advertiseAddr).toBe('2001:db8::11');
  });

  it('refuses a link-local, loopback or multicast v6 address, saying why', () => {
    const problem = (advertiseAddr: string) => AgentConfigSchema.safeParse({ ...base, advertiseAddr }).error?.issues[0]?.message;
    expect(problem('fe80::1')).toMatch(/link-local/);
    expect(problem('::1')).toMatch(/loopback/);
    expect(problem('ff02::1')).toMatch(/multicast/);
    expect(problem('node-a')).toMatch(/not an IPv4 or IPv6 address/);
  });
});
