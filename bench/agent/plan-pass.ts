/**
 * The planning part of an idle agent's pass, in process, on a synthetic cluster: SERVICES published
 * services x REPLICAS on 3 nodes, one overlay network. Each iteration stands for a pass woken by
 * another node's write (one remote task's record replaced, as the store mirror delivers it) and runs
 * what every pass runs: placement, the desired node plan, the reconciler's diff against what it applied
 * (adapters that do nothing, so only the diff is timed), the status summary.
 * Run: npm run build && node dist/bench/agent/plan-pass.js   (SERVICES=100 REPLICAS=3 ITERATIONS=300 CHANGE=task|node)
 */
import { performance } from 'node:perf_hooks';
import type { ClusterSnapshot } from '../../src/model/cluster.js';
import type { ServiceRecord, TaskRecord } from '../../src/model/records.js';
import { placementActions } from '../../src/agent/placement-actions.js';
import { desiredNode, PlanMemo, type NodeSettings } from '../../src/agent/node-plan.js';
import { publishableStatus } from '../../src/agent/node-status.js';
import { NodeReconciler, type NodeAdapters } from '../../src/agent/node-reconciler.js';
import { silentLogger } from '../../src/log/logger.js';
import { intToIpv4, macForIpv4 } from '../../src/sandbox/addresses.js';

const SERVICES = Number(process.env.SERVICES ?? 100);
const REPLICAS = Number(process.env.REPLICAS ?? 3);
const ITERATIONS = Number(process.env.ITERATIONS ?? 300);
/** What wakes each pass: `task` (a remote task's record replaced) or `node` (a label on another node). */
const CHANGE = process.env.CHANGE === 'node' ? 'node' : 'task';
const NODES = ['host-a', 'host-b', 'host-c'];

function snapshotOf(): ClusterSnapshot {
  const services: ServiceRecord[] = [];
  const tasks: TaskRecord[] = [];
  let n = 0;
  for (let s = 0; s < SERVICES; s++) {
    const name = `s${s}`;
    services.push({
      name,
      networks: ['appnet'],
      vips: { appnet: intToIpv4(0x0a000002 + s), ingress: intToIpv4(0x0aff0002 + s) },
      endpointMode: 'vip',
      ports: [{ published: 8000 + s, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }],
      replicas: REPLICAS,
      command: ['/bin/server'],
      lb: { scheduler: 'rr' },
    } as ServiceRecord);
    for (let slot = 1; slot <= REPLICAS; slot++) {
      n++;
      const app = intToIpv4(0x0a000100 + n);
      const ing = intToIpv4(0x0aff0100 + n);
      tasks.push({
        id: `task${String(n).padStart(8, '0')}`,
        service: name,
        slot,
        node: NODES[(s + slot) % NODES.length]!,
        addresses: { appnet: { ip: app, mac: macForIpv4(app) }, ingress: { ip: ing, mac: macForIpv4(ing) } },
        sandbox: '',
        desiredState: 'running',
        state: 'running',
        restarts: 0,
        updatedAt: '2026-12-01T10:00:00.000Z',
      } as TaskRecord);
    }
  }
  return {
    revision: 1,
    nodes: NODES.map((id, i) => ({ id, name: id, underlayIp: `192.0.2.${i + 1}`, lease: String(100 + i) })),
    nodeInfo: [],
    networks: [
      { name: 'appnet', driver: 'overlay', subnet: '10.0.0.0/16', gateway: '10.0.0.1', vni: 4096, ingress: false, options: {} },
      { name: 'ingress', driver: 'overlay', subnet: '10.255.0.0/16', gateway: '10.255.0.1', vni: 4097, ingress: true, options: {} },
    ],
    services,
    tasks,
    invalid: [],
  };
}

const settings: NodeSettings = {
  nodeId: 'host-a',
  netnsDir: '/run/meshnet/netns',
  underlayIp: '192.0.2.1',
  underlayMtu: 1500,
  drainSeconds: 2,
  gwbridge: { name: 'meshnet_gwbr', subnet: '172.18.0.0/16', gateway: '172.18.0.1', sboxAddress: '172.18.0.2' },
};
const endpoints = NODES.map((node, i) => ({ node, ip: `10.255.0.${3 + i}`, mac: macForIpv4(`10.255.0.${3 + i}`) }));

/** Adapters that hold everything as already applied: a pass through them times the reconciler's diff alone. */
function noopAdapters(): NodeAdapters {
  const ok = async () => undefined;
  const lb = { kind: 'nftables' as const, apply: async () => ({ changes: 0, durationMs: 0 }), read: async () => ({ services: [] }), destroy: ok, close: () => undefined };
  return {
    namespaces: { dir: settings.netnsDir, exists: () => true, create: () => undefined, list: () => [], path: (n: string) => `${settings.netnsDir}/${n}`, delete: () => undefined },
    sysctl: () => undefined,
    gw: { ensureBridge: ok, legs: async () => [], bridgeAddressIn: async () => undefined, ensureLeg: async () => false, removeLeg: ok },
    overlay: { apply: async () => ({ ops: [] }) },
    lbFor: () => lb,
    mesh: { applyHost: async () => false, applyHostFirewall: async () => false, applyTask: async () => false, forgetTask: () => undefined },
    health: { reconcile: ok },
    dns: { attach: ok, update: ok, detach: ok },
    processes: { has: () => true, get: (id: string) => ({ taskId: id, state: 'running', pid: 1, restarts: 0 }) as never, list: () => [], ensureRunning: async () => ({}) as never, stop: ok },
    close: () => undefined,
  } as unknown as NodeAdapters;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

let snap = snapshotOf();
const memo = new PlanMemo();
let gw: Record<string, string> = {};
const reconciler = new NodeReconciler(noopAdapters(), { resolvConf: '/dev/null', log: silentLogger() });
const place: number[] = [];
const diff: number[] = [];
const plan: number[] = [];
const status: number[] = [];
for (let i = 0; i < ITERATIONS; i++) {
  if (CHANGE === 'node') {
    // A label on another node (as mesh-at-scale writes): placement may care, this node's wiring does not.
    snap = { ...snap, revision: snap.revision + 1, nodes: snap.nodes.map((n) => (n.id === 'host-c' ? { ...n, labels: { bench: String(i) } } : n)) };
  } else {
    // Another node's write: one of its tasks' records replaced (its updatedAt moves), everything else the same objects.
    const remote = snap.tasks.map((t, j) => ({ t, j })).filter(({ t }) => t.node !== settings.nodeId);
    const { t, j } = remote[i % remote.length]!;
    const tasks = [...snap.tasks];
    tasks[j] = { ...t, updatedAt: new Date(Date.parse(t.updatedAt) + 1000).toISOString() };
    snap = { ...snap, revision: snap.revision + 1, tasks };
  }
  const t0 = performance.now();
  placementActions(snap, settings.nodeId, new Date(), 2);
  const t1 = performance.now();
  const p = desiredNode(snap, settings, { gwAddresses: gw, unusableExternal: new Set(), ingressEndpoints: endpoints, now: Date.now() }, memo);
  const t2 = performance.now();
  await reconciler.apply(p, { resync: false });
  const t3 = performance.now();
  publishableStatus(settings.nodeId, 'nftables', snap, p.lbTables.map((x) => x.table));
  const t4 = performance.now();
  gw = Object.fromEntries(p.tasks.map((x) => [x.record.id, x.gw.ip]));
  if (i >= 10) {
    place.push(t1 - t0);
    plan.push(t2 - t1);
    diff.push(t3 - t2);
    status.push(t4 - t3);
  }
}
const total = place.map((x, i) => x + plan[i]! + diff[i]! + status[i]!);
const r = (x: number) => Math.round(x * 100) / 100;
console.log(`${SERVICES} services x ${REPLICAS} on 3 nodes, ${total.length} passes woken by ${CHANGE === 'node' ? 'a label on another node' : "a remote task's write"}`);
console.log(`placement p50 ${r(pct(place, 50))} ms, desired plan p50 ${r(pct(plan, 50))} ms, reconciler diff p50 ${r(pct(diff, 50))} ms, status p50 ${r(pct(status, 50))} ms; total p50 ${r(pct(total, 50))} ms p99 ${r(pct(total, 99))} ms`);
console.log(JSON.stringify({ bench: 'agent-plan-pass', services: SERVICES, replicas: REPLICAS, change: CHANGE, placement_ms_p50: r(pct(place, 50)), plan_ms_p50: r(pct(plan, 50)), diff_ms_p50: r(pct(diff, 50)), status_ms_p50: r(pct(status, 50)), total_ms_p50: r(pct(total, 50)), total_ms_p99: r(pct(total, 99)) }));
