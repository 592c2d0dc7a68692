import type { MeshInput } from './mesh-input.js';

/**
 * A known cluster state seen from node n1: web (cluster, tcp 8000->80, 3 replicas on 3 nodes,
 * source-hash scheduler), dns (cluster, udp 5353->53), api (policy=local, tcp 9000->8080, health
 * on 31000, client affinity 600 s),
 * metrics (mode=host, tcp 9100->9100).
 */
export function knownState(): MeshInput {
  return {
    node: {
      nodeId: 'n1',
      gwbridge: { name: 'meshnet_gwbr', subnet: '172.18.0.0/16' },
      sbox: { gwbridgeAddress: '172.18.0.2', ingressAddress: '10.255.0.2' },
      ingressSubnet: '10.255.0.0/16',
    },
    services: [
      {
        id: 'web',
        name: 'web',
        scheduler: 'sh',
        ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }],
      },
      { id: 'dns', name: 'dns', ports: [{ published: 5353, target: 53, protocol: 'udp', mode: 'ingress', policy: 'cluster' }] },
      {
        id: 'api',
        name: 'api',
        healthPort: 31000,
        affinityTimeoutSeconds: 600,
        ports: [{ published: 9000, target: 8080, protocol: 'tcp', mode: 'ingress', policy: 'local' }],
      },
      { id: 'metrics', name: 'metrics', ports: [{ published: 9100, target: 9100, protocol: 'tcp', mode: 'host', policy: 'cluster' }] },
    ],
    tasks: [
      { id: 'web.1', serviceId: 'web', nodeId: 'n1', state: 'running', ingressAddress: '10.255.0.5', ingressInterface: 'eth1' },
      { id: 'web.2', serviceId: 'web', nodeId: 'n2', state: 'running', ingressAddress: '10.255.0.6' },
      { id: 'web.3', serviceId: 'web', nodeId: 'n3', state: 'draining', ingressAddress: '10.255.0.7' },
      { id: 'dns.1', serviceId: 'dns', nodeId: 'n2', state: 'running', ingressAddress: '10.255.0.8' },
      { id: 'api.1', serviceId: 'api', nodeId: 'n1', state: 'running', ingressAddress: '10.255.0.9', ingressInterface: 'eth1' },
      { id: 'api.2', serviceId: 'api', nodeId: 'n2', state: 'running', ingressAddress: '10.255.0.10', ingressInterface: 'eth1' },
      { id: 'metrics.1', serviceId: 'metrics', nodeId: 'n1', state: 'running', gwbridgeAddress: '172.18.0.3' },
      { id: 'metrics.2', serviceId: 'metrics', nodeId: 'n2', state: 'running', gwbridgeAddress: '172.18.0.3' },
    ],
  };
}
