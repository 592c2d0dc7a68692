import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn } from '../../src/sandbox/exec.js';
import { HealthServers } from '../../src/mesh/health-server.js';
import { applyMeshPlan, type MeshTargets } from '../../src/mesh/mesh-apply.js';
import type { MeshInput } from '../../src/mesh/mesh-input.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import type { ApplyReport, LbBackend, LbTable } from '../../src/vip/lb-table.js';
import { MeshLab } from './mesh-lab.js';

/** Records what the mesh hands the VIP layer; counts a change when the table differs. */
class RecordingLb implements LbBackend {
  readonly kind = 'nftables' as const;
  table: LbTable = { services: [] };
  async apply(table: LbTable): Promise<ApplyReport> {
    const changes = JSON.stringify(table) === JSON.stringify(this.table) ? 0 : table.services.length + 1;
    this.table = structuredClone(table);
    return { changes, durationMs: 0 };
  }
  async read(): Promise<LbTable> {
    return this.table;
  }
  async destroy(): Promise<void> {
    this.table = { services: [] };
  }
}

const GW = 'meshnet_gwbr';
const lab = new MeshLab('mesh-apply');
let targets: MeshTargets;
let task = '';
let host = '';

const input = (published: boolean): MeshInput => ({
  node: {
    nodeId: 'n1',
    gwbridge: { name: GW, subnet: '172.18.0.0/16' },
    sbox: { gwbridgeAddress: '172.18.0.2', ingressAddress: '10.255.0.2' },
    ingressSubnet: '10.255.0.0/16',
  },
  services: published
    ? [{ id: 'api', name: 'api', healthPort: 31000, ports: [{ published: 9000, target: 8080, protocol: 'tcp', mode: 'ingress', policy: 'local' }] }]
    : [{ id: 'api', name: 'api', ports: [] }],
  tasks: [{ id: 'api.1', serviceId: 'api', nodeId: 'n1', state: 'running', ingressAddress: '10.255.0.9', ingressInterface: 'eth1' }],
});

describe('applyMeshPlan: one pass over host, sandbox, tasks and health ports', () => {
  beforeAll(async () => {
    host = await lab.netns('host');
    const sbox = await lab.netns('sbox');
    task = await lab.netns('task');
    await lab.ip(host, `link add ${GW} type bridge`);
    await lab.veth({ netns: sbox, name: 'eth0', cidr: '10.255.0.2/16' }, { netns: task, name: 'eth1', cidr: '10.255.0.9/16' });
    targets = { hostNetns: host, sboxNetns: sbox, sboxLb: new RecordingLb(), health: new HealthServers(host), localTasks: new Map([['api.1', task]]) };
  });

  afterAll(async () => {
    await targets?.health.close();
    await lab.destroy();
  });

  it('publishes: task redirect and return route, sandbox services, host DNAT, health port', async () => {
    const report = await applyMeshPlan(computeMeshPlan(input(true)), targets);
    expect(report).toMatchObject({ hostChanged: true, tasksChanged: ['api.1'], conflicts: [], taskErrors: [] });
    expect(report.sboxChanges).toBeGreaterThan(0);
    expect((targets.sboxLb as RecordingLb).table.services.map((s) => s.id)).toEqual(['ingress-tcp-9000']);
    expect((await execIn(task, ['iptables', '-t', 'nat', '-S', 'MESHNET-INGRESS'])).stdout).toContain('--dport 9000 -j REDIRECT --to-ports 8080');
    expect((await execIn(task, ['ip', 'rule', 'show', 'pref', '2550'])).stdout).toContain('from 10.255.0.9 lookup 2550');
    expect((await execIn(host, ['iptables', '-t', 'nat', '-S', 'DOCKER-INGRESS'])).stdout).toContain('--dport 9000 -j DNAT');
    expect(targets.health.ports()).toEqual([31000]);
  });

  it('a second pass changes nothing', async () => {
    const report = await applyMeshPlan(computeMeshPlan(input(true)), targets);
    expect(report).toMatchObject({ hostChanged: false, sboxChanges: 0, tasksChanged: [] });
  });

  it('unpublishing removes the task rules, the return route, the host chain and the health port', async () => {
    const report = await applyMeshPlan(computeMeshPlan(input(false)), targets);
    expect(report).toMatchObject({ hostChanged: true, tasksChanged: ['api.1'] });
    expect((targets.sboxLb as RecordingLb).table.services).toEqual([]);
    expect((await execIn(task, ['iptables', '-t', 'nat', '-S'])).stdout).not.toContain('MESHNET-INGRESS');
    expect((await execIn(task, ['ip', 'rule', 'show', 'pref', '2550'])).stdout.trim()).toBe('');
    expect((await execIn(host, ['iptables', '-t', 'nat', '-S'])).stdout).not.toContain('DOCKER-INGRESS');
    expect(targets.health.ports()).toEqual([]);
  });

  it('a task namespace that vanished is reported, and the rest of the pass still runs', async () => {
    const report = await applyMeshPlan(computeMeshPlan(input(true)), { ...targets, localTasks: new Map([['api.1', '/run/meshnet-test/missing']]) });
    expect(report.taskErrors.map((e) => e.taskId)).toEqual(['api.1']);
    expect(report.hostChanged).toBe(true);
  });
});
