import { describe, expect, it } from 'vitest';
import {
  HealthPortConflictError,
  HostPortConflictError,
  InvalidMeshInputError,
  PublishedPortConflictError,
} from './errors.js';
import { knownState } from './fixtures.test-data.js';
import type { MeshInput } from './mesh-input.js';
import { assertNoPortConflicts, computeMeshPlan, fwmarkFor } from './published-ports.js';

function state(mutate: (s: MeshInput) => void = () => undefined): MeshInput {
  const s = knownState();
  mutate(s);
  return s;
}

describe('computeMeshPlan: ingress ports', () => {
  it('publishes every ingress port on every node, whether or not it runs a task', () => {
    const n3 = computeMeshPlan(state((s) => (s.node.nodeId = 'n3')));
    // n3 runs only a draining web task and no api task: web and dns published, api (policy=local) not.
    expect(n3.host.ingressPorts).toEqual([
      { protocol: 'tcp', port: 8000 },
      { protocol: 'udp', port: 5353 },
    ]);
    expect(n3.tasks.map((t) => t.taskId)).toEqual(['web.3']);
  });

  it('cluster policy: all running tasks weight 1, draining weight 0, SNAT to the sandbox ingress address', () => {
    const web = computeMeshPlan(state()).sbox.virtualServices.find((v) => v.id === 'ingress-tcp-8000')!;
    expect(web.sourceNat).toBe('10.255.0.2');
    expect(web.backends).toEqual([
      { address: '10.255.0.5', port: 0, weight: 1 },
      { address: '10.255.0.6', port: 0, weight: 1 },
      { address: '10.255.0.7', port: 0, weight: 0 },
    ]);
  });

  it('leaves out tasks that are pending, stopped or not yet on the ingress network', () => {
    const plan = computeMeshPlan(
      state((s) => {
        s.tasks.push({ id: 'web.4', serviceId: 'web', nodeId: 'n2', state: 'pending', ingressAddress: '10.255.0.20' });
        s.tasks.push({ id: 'web.5', serviceId: 'web', nodeId: 'n2', state: 'stopped', ingressAddress: '10.255.0.21' });
        s.tasks.push({ id: 'web.6', serviceId: 'web', nodeId: 'n2', state: 'running' });
      }),
    );
    const web = plan.sbox.virtualServices.find((v) => v.id === 'ingress-tcp-8000')!;
    expect(web.backends.map((b) => b.address)).toEqual(['10.255.0.5', '10.255.0.6', '10.255.0.7']);
  });

  it('fwmarks are stable per published port, from 256 up, distinct for tcp and udp', () => {
    expect(fwmarkFor('tcp', 1)).toBe(257);
    expect(fwmarkFor('tcp', 8000)).not.toBe(fwmarkFor('udp', 8000));
    const before = computeMeshPlan(state()).sbox.virtualServices.find((v) => v.id === 'ingress-udp-5353')!;
    const after = computeMeshPlan(state((s) => s.services.splice(0, 1))).sbox.virtualServices.find((v) => v.id === 'ingress-udp-5353')!;
    expect(after.frontend).toEqual(before.frontend);
  });

  it('the output does not depend on the order of tasks', () => {
    const a = computeMeshPlan(state());
    const b = computeMeshPlan(state((s) => s.tasks.reverse()));
    expect(b).toEqual(a);
  });
});

describe('computeMeshPlan: policy=local', () => {
  it('backends are only local tasks, without SNAT', () => {
    const api = computeMeshPlan(state()).sbox.virtualServices.find((v) => v.id === 'ingress-tcp-9000')!;
    expect(api.sourceNat).toBeUndefined();
    expect(api.backends).toEqual([{ address: '10.255.0.9', port: 0, weight: 1 }]);
  });

  it('a node without a local running task does not DNAT the port (the host refuses) and its health port says 0', () => {
    const n3 = computeMeshPlan(state((s) => (s.node.nodeId = 'n3')));
    expect(n3.host.ingressPorts.some((p) => p.port === 9000)).toBe(false);
    expect(n3.health).toEqual([{ serviceId: 'api', serviceName: 'api', port: 31000, localTasks: 0 }]);
    expect(n3.sbox.virtualServices.find((v) => v.id === 'ingress-tcp-9000')!.backends).toEqual([]);
  });

  it('the local task gets a return route through the local sandbox', () => {
    const api1 = computeMeshPlan(state()).tasks.find((t) => t.taskId === 'api.1')!;
    expect(api1.returnRoute).toEqual({
      from: '10.255.0.9',
      table: 2550,
      priority: 2550,
      device: 'eth1',
      routes: [{ to: '10.255.0.0/16' }, { to: 'default', via: '10.255.0.2' }],
    });
    expect(api1.redirects).toEqual([{ protocol: 'tcp', address: '10.255.0.9', port: 9000, targetPort: 8080 }]);
  });

  it('refuses a policy=local task without the name of its ingress interface', () => {
    expect(() =>
      computeMeshPlan(
        state((s) => {
          delete s.tasks.find((t) => t.id === 'api.1')!.ingressInterface;
        }),
      ),
    ).toThrow(/api\.1 serves a policy=local port but has no ingressInterface/);
  });

  it('health counts follow the local running tasks', () => {
    const plan = computeMeshPlan(
      state((s) => s.tasks.push({ id: 'api.3', serviceId: 'api', nodeId: 'n1', state: 'running', ingressAddress: '10.255.0.30', ingressInterface: 'eth1' })),
    );
    expect(plan.health[0]!.localTasks).toBe(2);
  });
});

describe('computeMeshPlan: mode=host', () => {
  it('DNATs straight to the local task, only on nodes that run one', () => {
    expect(computeMeshPlan(state()).host.hostModePorts).toEqual([
      { protocol: 'tcp', port: 9100, serviceId: 'metrics', taskId: 'metrics.1', taskAddress: '172.18.0.3', targetPort: 9100 },
    ]);
    expect(computeMeshPlan(state((s) => (s.node.nodeId = 'n3'))).host.hostModePorts).toEqual([]);
    // Not through the mesh: no VirtualService and no task redirect.
    const plan = computeMeshPlan(state());
    expect(plan.sbox.virtualServices.some((v) => v.frontend.port === 9100)).toBe(false);
    expect(plan.tasks.some((t) => t.serviceId === 'metrics')).toBe(false);
  });

  it('a second local task of the same mode=host service conflicts, the first keeps the port', () => {
    const plan = computeMeshPlan(
      state((s) => s.tasks.push({ id: 'metrics.9', serviceId: 'metrics', nodeId: 'n1', state: 'running', gwbridgeAddress: '172.18.0.9' })),
    );
    expect(plan.host.hostModePorts.map((p) => p.taskId)).toEqual(['metrics.1']);
    expect(plan.conflicts).toHaveLength(1);
    const err = plan.conflicts[0]!;
    expect(err).toBeInstanceOf(HostPortConflictError);
    expect(err.code).toBe('MESH_HOST_PORT_CONFLICT');
    expect(err.message).toContain('task metrics.9 cannot bind 9100/tcp on node n1');
    expect(err.message).toContain('task metrics.1 of service metrics');
  });

  it('a port something else holds on the host is refused for mode=host and ingress alike', () => {
    const plan = computeMeshPlan(
      state((s) => {
        s.boundHostPorts = [
          { protocol: 'tcp', port: 9100, owner: 'node-exporter (pid 77)' },
          { protocol: 'tcp', port: 8000, owner: 'meshnet agent API' },
        ];
      }),
    );
    expect(plan.host.hostModePorts).toEqual([]);
    expect(plan.host.ingressPorts.some((p) => p.port === 8000)).toBe(false);
    expect(plan.conflicts.map((c) => c.message)).toEqual([
      expect.stringContaining('service web cannot publish 8000/tcp: it is already in use by meshnet agent API'),
      expect.stringContaining('service metrics cannot publish 9100/tcp: it is already in use by node-exporter (pid 77)'),
    ]);
  });
});

describe('conflicts', () => {
  it('the same ingress port published by two services: the first keeps it, the second gets a typed error', () => {
    const plan = computeMeshPlan(
      state((s) =>
        s.services.push({ id: 'web2', name: 'web2', ports: [{ published: 8000, target: 81, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }] }),
      ),
    );
    expect(plan.conflicts).toHaveLength(1);
    expect(plan.conflicts[0]).toBeInstanceOf(PublishedPortConflictError);
    expect(plan.conflicts[0]!.message).toBe(
      'service web2 cannot publish 8000/tcp: it is already in use by service web (ingress); choose another published port or unpublish it there first',
    );
    expect(plan.sbox.virtualServices.filter((v) => v.frontend.port === 8000)).toHaveLength(1);
  });

  it('the same number on tcp and udp is not a conflict', () => {
    const s = state((x) =>
      x.services.push({ id: 'web-udp', name: 'web-udp', ports: [{ published: 8000, target: 80, protocol: 'udp', mode: 'ingress', policy: 'cluster' }] }),
    );
    expect(computeMeshPlan(s).conflicts).toEqual([]);
    expect(() => assertNoPortConflicts(s.services)).not.toThrow();
  });

  it('a mode=host port equal to an ingress port is refused on every node', () => {
    const s = state((x) =>
      x.services.push({ id: 'hosty', name: 'hosty', ports: [{ published: 5353, target: 53, protocol: 'udp', mode: 'host', policy: 'cluster' }] }),
    );
    expect(() => assertNoPortConflicts(s.services)).toThrow(PublishedPortConflictError);
    expect(computeMeshPlan(state((x) => (x.node.nodeId = 'n3'))).conflicts).toEqual([]);
  });

  it('a health port on a published port is refused', () => {
    const plan = computeMeshPlan(state((s) => (s.services[2]!.healthPort = 8000)));
    expect(plan.health).toEqual([]);
    expect(plan.conflicts[0]).toBeInstanceOf(HealthPortConflictError);
    expect(plan.conflicts[0]!.message).toContain('service api cannot serve its health check on 8000/tcp');
  });
});

describe('computeMeshPlan: load-balancing choices of the service', () => {
  const sbox = (s: MeshInput) => computeMeshPlan(s).sbox.virtualServices;

  it('carries --lb-scheduler and --lb-affinity into the sandbox services of every published port', () => {
    const services = sbox(state());
    expect(services.find((v) => v.id === 'ingress-tcp-8000')).toMatchObject({ scheduler: 'sh', sourceNat: '10.255.0.2' });
    expect(services.find((v) => v.id === 'ingress-tcp-8000')!.persistenceSeconds).toBeUndefined();
    // policy=local keeps the client address: affinity on it, and still no SNAT.
    const api = services.find((v) => v.id === 'ingress-tcp-9000')!;
    expect(api).toMatchObject({ scheduler: 'rr', persistenceSeconds: 600 });
    expect(api.sourceNat).toBeUndefined();
  });

  it('a service that chose nothing gets rr without affinity, as before', () => {
    const dns = sbox(state()).find((v) => v.id === 'ingress-udp-5353')!;
    expect(dns.scheduler).toBe('rr');
    expect('persistenceSeconds' in dns).toBe(false);
  });

  it('every port of a service with several gets the same choices', () => {
    const two = sbox(
      state((s) => {
        s.services[0]!.ports.push({ published: 8443, target: 443, protocol: 'tcp', mode: 'ingress', policy: 'cluster' });
        s.services[0]!.affinityTimeoutSeconds = 30;
      }),
    ).filter((v) => v.id.startsWith('ingress-tcp-8'));
    expect(two.map((v) => [v.id, v.scheduler, v.persistenceSeconds])).toEqual([
      ['ingress-tcp-8000', 'sh', 30],
      ['ingress-tcp-8443', 'sh', 30],
    ]);
  });

  it('refuses an unknown scheduler and an affinity outside 1-86400 s at the edge', () => {
    const bad = state((s) => {
      (s.services[0] as { scheduler?: string }).scheduler = 'fifo';
      s.services[2]!.affinityTimeoutSeconds = 0;
    });
    expect(() => computeMeshPlan(bad)).toThrow(InvalidMeshInputError);
    expect(() => computeMeshPlan(bad)).toThrow(/services\.0\.scheduler.*services\.2\.affinityTimeoutSeconds/);
  });
});

describe('input validation', () => {
  it('names every bad field', () => {
    const bad = state((s) => {
      s.services[0]!.ports[0]!.published = 70000;
      s.tasks[0]!.ingressAddress = '10.255.0';
      s.node.gwbridge.name = 'meshnet_gwbridge';
    });
    let err: unknown;
    try {
      computeMeshPlan(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidMeshInputError);
    const msg = (err as Error).message;
    expect(msg).toContain('services.0.ports.0.published');
    expect(msg).toContain('tasks.0.ingressAddress');
    expect(msg).toContain('node.gwbridge.name');
  });
});

describe('removal', () => {
  it('no services: nothing published, no sandbox services, no task rules, no health ports', () => {
    const plan = computeMeshPlan(state((s) => (s.services = [])));
    expect(plan.host.ingressPorts).toEqual([]);
    expect(plan.host.hostModePorts).toEqual([]);
    expect(plan.sbox.virtualServices).toEqual([]);
    expect(plan.tasks).toEqual([]);
    expect(plan.health).toEqual([]);
  });

  it('a port a program holds on this host loses only this host\'s DNAT: the sandbox and local tasks still serve it', () => {
    const input = knownState();
    const plan = computeMeshPlan({ ...input, boundHostPorts: [{ protocol: 'tcp', port: 8000, owner: 'sshd' }] });
    expect(plan.host.ingressPorts.some((p) => p.protocol === 'tcp' && p.port === 8000)).toBe(false);
    expect(plan.sbox.virtualServices.some((v) => v.id === 'ingress-tcp-8000')).toBe(true);
    const free = computeMeshPlan(input);
    expect(plan.tasks).toEqual(free.tasks);
    expect(plan.conflicts.map((c) => c.message)).toEqual([expect.stringMatching(/8000\/tcp.*sshd/)]);
  });
});
