import { describe, expect, it } from 'vitest';
import { DesiredTableInputError, desiredLbTable, lbServiceId, taskWeight, type DesiredTableInput, type ServiceInput, type TaskInput } from './desired-table.js';
import { validateLbTable } from './nft/validate-table.js';

const web: ServiceInput = {
  id: 'svc-web-1',
  name: 'Web Frontend',
  endpointMode: 'vip',
  vips: { front: '10.0.0.2', back: '10.1.0.2' },
  ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }],
  published: [{ protocol: 'tcp', publishedPort: 8080, targetPort: 8080, mark: 256 }],
};
const task = (id: string, state: TaskInput['state'], addresses: Record<string, string>, drainDeadline?: number): TaskInput => ({
  id,
  serviceId: 'svc-web-1',
  state,
  addresses,
  ...(drainDeadline !== undefined ? { drainDeadline } : {}),
});
const base = (over: Partial<DesiredTableInput> = {}): DesiredTableInput => ({
  services: [web],
  tasks: [
    task('t1', 'running', { front: '10.0.0.5', ingress: '10.255.0.5' }),
    task('t2', 'draining', { front: '10.0.0.6', ingress: '10.255.0.6' }, 2000),
    task('t3', 'failed', { front: '10.0.0.7' }),
    task('t4', 'running', { back: '10.1.0.8' }),
  ],
  namespace: { attachedNetworks: ['front'] },
  now: 1000,
  ...over,
});

describe('desiredLbTable', () => {
  it('gives running tasks weight 1, draining ones 0 until the deadline, failed ones nothing', () => {
    const t = desiredLbTable(base());
    expect(t.services).toHaveLength(1);
    expect(t.services[0]!.frontend).toEqual({ kind: 'vip', address: '10.0.0.2', protocol: 'tcp', port: 80 });
    expect(t.services[0]!.backends).toEqual([
      { address: '10.0.0.5', port: 8080, weight: 1 },
      { address: '10.0.0.6', port: 8080, weight: 0 },
    ]);
    const later = desiredLbTable(base({ now: 2000 }));
    expect(later.services[0]!.backends.map((b) => b.address)).toEqual(['10.0.0.5']);
    validateLbTable(t);
  });

  it('balances only the VIPs of networks the namespace is on, over tasks on that network', () => {
    const t = desiredLbTable(base({ namespace: { attachedNetworks: ['back'] } }));
    expect(t.services.map((s) => s.frontend)).toEqual([{ kind: 'vip', address: '10.1.0.2', protocol: 'tcp', port: 80 }]);
    expect(t.services[0]!.backends).toEqual([{ address: '10.1.0.8', port: 8080, weight: 1 }]);
    expect(desiredLbTable(base({ namespace: { attachedNetworks: [] } })).services).toEqual([]);
  });

  it('gives dnsrr services no VIP entry', () => {
    expect(desiredLbTable(base({ services: [{ ...web, endpointMode: 'dnsrr' }] })).services).toEqual([]);
  });

  it('adds fwmark frontends with source NAT in the ingress sandbox', () => {
    const t = desiredLbTable(base({ namespace: { attachedNetworks: ['ingress'], ingress: { networkId: 'ingress', sourceNat: '10.255.0.2' } } }));
    expect(t.services).toHaveLength(1);
    expect(t.services[0]).toMatchObject({
      frontend: { kind: 'fwmark', mark: 256, protocol: 'tcp', port: 8080 },
      sourceNat: '10.255.0.2',
      backends: [
        { address: '10.255.0.5', port: 8080, weight: 1 },
        { address: '10.255.0.6', port: 8080, weight: 0 },
      ],
    });
  });

  it('passes scheduler and affinity through and keeps ids stable, unique and nft-safe', () => {
    const t = desiredLbTable(base({ services: [{ ...web, scheduler: 'sh', affinityTimeoutSeconds: 600 }], namespace: { attachedNetworks: ['front', 'back'] } }));
    expect(t.services.map((s) => [s.scheduler, s.persistenceSeconds])).toEqual([
      ['sh', 600],
      ['sh', 600],
    ]);
    const ids = t.services.map((s) => s.id);
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9_-]{1,48}$/);
    expect(lbServiceId('svc-web-1', 'Web Frontend', 'front', 'tcp', 80)).toBe(ids.find((i) => i === lbServiceId('svc-web-1', 'Web Frontend', 'front', 'tcp', 80)));
    expect(lbServiceId('x'.repeat(100), 'N'.repeat(200), 'net', 'udp', 65535).length).toBeLessThanOrEqual(48);
    expect(lbServiceId('a', 'web', 'n', 'tcp', 80)).not.toBe(lbServiceId('b', 'web', 'n', 'tcp', 80));
  });

  it('rejects ports out of range with a typed error naming the service', () => {
    expect(() => desiredLbTable(base({ services: [{ ...web, ports: [{ protocol: 'tcp', port: -1 }] }] }))).toThrow(DesiredTableInputError);
    expect(() => desiredLbTable(base({ services: [{ ...web, ports: [{ protocol: 'tcp', port: 70000 }] }] }))).toThrow(/Web Frontend/);
    expect(() => desiredLbTable(base({ services: [{ ...web, ports: [{ protocol: 'tcp', port: 0, targetPort: 80 }] }] }))).toThrow(/port 0 means every port/);
  });

  it('port 0 is the VIP\'s every port: backends keep the client\'s port (0)', () => {
    const t = desiredLbTable(base({ services: [{ ...web, ports: [{ protocol: 'tcp', port: 0 }] }] }));
    expect(t.services.length).toBeGreaterThan(0);
    for (const vs of t.services) {
      expect(vs.frontend).toMatchObject({ kind: 'vip', port: 0 });
      for (const b of vs.backends) expect(b.port).toBe(0);
    }
  });

  it('taskWeight: stopping without a deadline leaves at once', () => {
    expect(taskWeight(task('x', 'stopping', {}), 0)).toBeNull();
    expect(taskWeight(task('x', 'starting', {}), 0)).toBeNull();
    expect(taskWeight(task('x', 'stopping', {}, 10), 5)).toBe(0);
  });
});
