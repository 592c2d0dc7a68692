import type { ServiceRecord, TaskRecord } from '../model/records.js';
import type { ClusterFacts } from './cluster-facts.js';
import type { LinkView, NodeKernelView, TaskView } from './kernel-view.js';

/**
 * A healthy 3-node cluster as explain sees it: service web (8000:80) with web.1 on host-a,
 * web.2 on host-b, web.3 on host-c, and each node's kernel views as the agents would have
 * programmed them. Tests break one thing at a time.
 */

const NODES = ['host-a', 'host-b', 'host-c'] as const;
const vtep = (node: string) => `192.0.2.${NODES.indexOf(node as (typeof NODES)[number]) + 1}`;
const sboxIp = (node: string) => `10.255.0.${NODES.indexOf(node as (typeof NODES)[number]) + 2}`;
const mac = (ip: string) => `02:42:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
const taskIp = (slot: number) => `10.255.0.${10 + slot}`;

/** The cluster's intent. */
export function factsFixture(): ClusterFacts {
  const web: ServiceRecord = {
    name: 'web',
    networks: [],
    vips: { ingress: '10.255.0.100' },
    endpointMode: 'vip',
    ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }],
    replicas: 3,
    command: ['/bin/server'],
    lb: { scheduler: 'rr' },
  };
  const task = (slot: number): TaskRecord => ({
    id: `task0000000${slot}`,
    service: 'web',
    slot,
    node: NODES[slot - 1]!,
    addresses: { ingress: { ip: taskIp(slot), mac: mac(taskIp(slot)) } },
    sandbox: `/run/meshnet/netns/t-task0000000${slot}`,
    desiredState: 'running',
    state: 'running',
    restarts: 0,
    updatedAt: '2026-01-01T00:00:00.000Z',
  });
  return {
    nodes: NODES.map((n) => ({ id: n, name: n, underlayIp: vtep(n), lease: '1' })),
    networks: [{ name: 'ingress', driver: 'overlay', subnet: '10.255.0.0/16', gateway: '10.255.0.1', vni: 4096, ingress: true, options: {} }],
    services: [web],
    tasks: [task(1), task(2), task(3)],
    ingressEndpoints: NODES.map((n) => ({ node: n, ip: sboxIp(n), mac: mac(sboxIp(n)) })),
  };
}

const link = (name: string, addresses: string[], mtu: number, extra: Partial<LinkView> = {}): LinkView => ({ name, mtu, up: true, addresses, ...extra });

function taskView(slot: number, listening: number[] = [80]): TaskView {
  const ip = taskIp(slot);
  return {
    taskId: `task0000000${slot}`,
    path: `/run/meshnet/netns/t-task0000000${slot}`,
    exists: true,
    errors: [],
    links: [link('lo', ['127.0.0.1/8'], 65536), link('eth0', [`${ip}/16`], 1450, { kind: 'veth' }), link('eth1', [`172.18.0.${2 + slot}/16`], 1500, { kind: 'veth' })],
    nat: {
      PREROUTING: [{ rule: '-m comment --comment meshnet-ingress -j MESHNET-INGRESS', packets: 5, bytes: 300 }],
      'MESHNET-INGRESS': [{ rule: `-d ${ip}/32 -p tcp -m tcp --dport 8000 -j REDIRECT --to-ports 80`, packets: 5, bytes: 300 }],
    },
    listening: { tcp: listening, udp: [] },
  };
}

/** Every node's kernel, as the agents program it for the facts above. */
export function viewsFixture(): Map<string, NodeKernelView> {
  const facts = factsFixture();
  const views = new Map<string, NodeKernelView>();
  for (const [i, node] of NODES.entries()) {
    const slot = i + 1;
    const remote = facts.tasks.filter((t) => t.node !== node).map((t) => t.addresses['ingress']!);
    const remoteSboxes = facts.ingressEndpoints.filter((e) => e.node !== node);
    const peers = [...remote.map((a) => ({ ...a, vtep: vtep(facts.tasks.find((t) => t.addresses['ingress']!.ip === a.ip)!.node) })), ...remoteSboxes.map((e) => ({ ip: e.ip, mac: e.mac, vtep: vtep(e.node) }))];
    views.set(node, {
      node,
      readAt: '2026-01-01T00:00:00.000Z',
      host: {
        path: '/proc/1/ns/net',
        exists: true,
        errors: [],
        links: [link('lo', ['127.0.0.1/8'], 65536), link('eth0', [`${vtep(node)}/24`], 1500, { kind: 'veth' }), link('meshnet_gwbr', ['172.18.0.1/16'], 1500, { kind: 'bridge' })],
        iptables: {
          nat: {
            PREROUTING: [{ rule: '-m addrtype --dst-type LOCAL -m comment --comment meshnet -j DOCKER-INGRESS', packets: 12, bytes: 720 }],
            OUTPUT: [{ rule: '-m addrtype --dst-type LOCAL -m comment --comment meshnet -j DOCKER-INGRESS', packets: 1, bytes: 60 }],
            'DOCKER-INGRESS': [
              { rule: '-p tcp -m tcp --dport 8000 -j DNAT --to-destination 172.18.0.2:8000', packets: 9, bytes: 540 },
              { rule: '-j RETURN', packets: 3, bytes: 180 },
            ],
          },
          filter: {
            'DOCKER-INGRESS': [
              { rule: '-d 172.18.0.2/32 -o meshnet_gwbr -p tcp -m tcp --dport 8000 -m conntrack --ctstate DNAT -j ACCEPT', packets: 9, bytes: 540 },
              { rule: '-j RETURN', packets: 0, bytes: 0 },
            ],
          },
        },
      },
      sbox: {
        path: '/run/meshnet/netns/ingress_sbox',
        exists: true,
        errors: [],
        links: [link('lo', ['127.0.0.1/8'], 65536), link('eth0', [`${sboxIp(node)}/16`], 1450, { kind: 'veth' }), link('eth1', ['172.18.0.2/16'], 1500, { kind: 'veth' })],
        lb: {
          skeletonComplete: true,
          table: {
            services: [
              {
                id: 'ingress-tcp-8000',
                frontend: { kind: 'fwmark', mark: 8256, protocol: 'tcp', port: 8000, address: '172.18.0.2' },
                scheduler: 'rr',
                sourceNat: sboxIp(node),
                backends: [1, 2, 3].map((s) => ({ address: taskIp(s), port: 8000, weight: 1 })),
              },
            ],
          },
        },
        conntrack: [{ protocol: 'tcp', dst: '172.18.0.2', dport: 8000, backend: taskIp(1), backendPort: 80, connections: 2 }],
      },
      overlays: [
        {
          network: 'ingress',
          path: '/run/meshnet/netns/ov-ingress',
          exists: true,
          errors: [],
          links: [link('br0', ['10.255.0.1/16'], 1450, { kind: 'bridge' }), link('vxlan0', [], 1450, { kind: 'vxlan', master: 'br0', vxlan: { vni: 4096, port: 4789 } })],
          fdb: peers.map((p) => ({ link: 'vxlan0', mac: p.mac, dst: p.vtep, permanent: true })),
          neighbors: peers.map((p) => ({ link: 'vxlan0', ip: p.ip, mac: p.mac, permanent: true })),
        },
      ],
      tasks: [taskView(slot)],
    });
  }
  return views;
}
