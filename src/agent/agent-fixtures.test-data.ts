import type { ClusterSnapshot } from '../model/cluster.js';
import type { ServiceRecord, TaskRecord } from '../model/records.js';
import type { NodeSettings } from './node-plan.js';

/** A lab node's fixed settings (host-a: 192.0.2.1, the others 192.0.2.2). */
export function settingsFixture(nodeId: string): NodeSettings {
  return {
    nodeId,
    netnsDir: `/run/${nodeId}/netns`,
    underlayIp: nodeId === 'host-a' ? '192.0.2.1' : '192.0.2.2',
    underlayMtu: 1500,
    drainSeconds: 2,
    gwbridge: { name: 'meshnet_gwbr', subnet: '172.18.0.0/16', gateway: '172.18.0.1', sboxAddress: '172.18.0.2' },
  };
}

/** Every node's ingress sandbox endpoint in the fixture cluster. */
export const endpointsFixture = [
  { node: 'host-a', ip: '10.255.0.3', mac: '02:42:0a:ff:00:03' },
  { node: 'host-b', ip: '10.255.0.4', mac: '02:42:0a:ff:00:04' },
  { node: 'host-c', ip: '10.255.0.5', mac: '02:42:0a:ff:00:05' },
];

/** A small cluster: 3 live nodes, appnet + ingress, service web (3 replicas, 8000:80) as plain records. */
export function snapshotFixture(): ClusterSnapshot {
  const web: ServiceRecord = {
    name: 'web',
    networks: ['appnet'],
    vips: { appnet: '10.0.1.2', ingress: '10.255.0.2' },
    endpointMode: 'vip',
    ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }],
    replicas: 3,
    command: ['/bin/server'],
    lb: { scheduler: 'rr' },
  };
  const task = (slot: number, node: string, state: TaskRecord['state'] = 'running'): TaskRecord => ({
    id: `task0000000${slot}`,
    service: 'web',
    slot,
    node,
    addresses: {
      appnet: { ip: `10.0.1.${10 + slot}`, mac: `02:42:0a:00:01:${(10 + slot).toString(16).padStart(2, '0')}` },
      ingress: { ip: `10.255.0.${10 + slot}`, mac: `02:42:0a:ff:00:${(10 + slot).toString(16).padStart(2, '0')}` },
    },
    sandbox: `/run/${node}/netns/t-task0000000${slot}`,
    desiredState: 'running',
    state,
    restarts: 0,
    updatedAt: '2026-11-25T10:00:00.000Z',
  });
  return {
    revision: 42,
    nodes: ['host-a', 'host-b', 'host-c'].map((id, i) => ({ id, name: id, underlayIp: `192.0.2.${i + 1}`, lease: String(100 + i) })),
    networks: [
      { name: 'appnet', driver: 'overlay', subnet: '10.0.1.0/24', gateway: '10.0.1.1', vni: 4096, ingress: false, options: {} },
      { name: 'ingress', driver: 'overlay', subnet: '10.255.0.0/16', gateway: '10.255.0.1', vni: 4097, ingress: true, options: {} },
    ],
    services: [web],
    tasks: [task(1, 'host-a'), task(2, 'host-b'), task(3, 'host-c')],
    nodeInfo: [],
    invalid: [],
  };
}
