import { describe, expect, it } from 'vitest';
import { planPlacement, replicaStatusText, slotsForNode, type PlacementInput } from './cluster-placement.js';
import type { NodeAvailability, NodeInfoRecord, ServiceRecord, TaskRecord } from './records.js';

// planPlacement over whole snapshots: modes, constraints, caps, availability, and the pending reasons.

const at = '2026-11-25T09:00:00.000Z';
type NodeSpec = { id: string; labels?: Record<string, string>; availability?: NodeAvailability; live?: boolean };

function service(name: string, extra: Partial<ServiceRecord> = {}): ServiceRecord {
  return { name, networks: [], vips: {}, endpointMode: 'vip', ports: [], replicas: 3, command: ['/bin/app'], lb: { scheduler: 'rr' }, ...extra };
}

function task(svc: string, slot: number, node: string, desiredState: TaskRecord['desiredState'] = 'running'): TaskRecord {
  return { id: `t${svc}${slot}x${node}`.replace(/[^a-z0-9]/g, ''), service: svc, slot, node, addresses: {}, sandbox: `/run/t-${slot}`, desiredState, state: 'running', restarts: 0, updatedAt: at };
}

function snap(nodes: NodeSpec[], services: ServiceRecord[], tasks: TaskRecord[] = []): PlacementInput {
  const info: NodeInfoRecord[] = nodes.map((n) => ({ id: n.id, name: n.id, underlayIp: '192.0.2.1', availability: n.availability ?? 'active', labels: n.labels ?? {}, createdAt: at, updatedAt: at }));
  const live = nodes.filter((n) => n.live !== false).map((n, i) => ({ id: n.id, name: n.id, underlayIp: `192.0.2.${i + 1}`, lease: String(i + 1) }));
  return { nodes: live, nodeInfo: info, services, tasks };
}

/** Runs the placement as the agents do: each node claims what is placed on it, until nothing changes. */
function settle(input: PlacementInput): TaskRecord[] {
  let tasks = input.tasks;
  for (let round = 0; round < 5; round++) {
    const plans = planPlacement({ ...input, tasks });
    const next: TaskRecord[] = [];
    for (const [svc, plan] of plans) for (const [slot, node] of plan.slots) next.push(task(svc, slot, node));
    if (JSON.stringify(next) === JSON.stringify(tasks)) break;
    tasks = next;
  }
  return tasks;
}

const nodesOf = (tasks: TaskRecord[], svc: string) => tasks.filter((t) => t.service === svc).map((t) => t.node).sort();
const abc: NodeSpec[] = [{ id: 'a' }, { id: 'b', labels: { zone: 'eu' } }, { id: 'c' }];

describe('constraints', () => {
  it('places a constrained service only on matching nodes, and shows the rest as pending with why', () => {
    const plan = planPlacement(snap(abc, [service('web', { placement: { constraints: ['node.labels.zone==eu'] } })])).get('web')!;
    expect([...plan.slots.values()]).toEqual(['b', 'b', 'b']);
    expect(plan.pending).toBe(0);

    const capped = planPlacement(snap(abc, [service('web', { placement: { constraints: ['node.labels.zone==eu'], maxReplicasPerNode: 1 } })])).get('web')!;
    expect([...capped.slots]).toEqual([[1, 'b']]);
    expect(capped).toMatchObject({ desired: 3, pending: 2, pendingReason: 'no suitable node (1 node matches node.labels.zone==eu, max 1 per node)' });
    expect(replicaStatusText(1, capped)).toBe('1/3 running; 2 pending: no suitable node (1 node matches node.labels.zone==eu, max 1 per node)');
  });

  it('matches node ids, names and labels from the persistent record, with != too', () => {
    const plans = planPlacement(
      snap(abc, [
        service('not-a', { placement: { constraints: ['node.id!=a'] } }),
        service('only-c', { placement: { constraints: ['node.hostname==c'] } }),
        service('not-eu', { placement: { constraints: ['node.labels.zone!=eu'] } }),
        service('none', { placement: { constraints: ['node.labels.zone==us'] } }),
      ]),
    );
    expect(new Set(plans.get('not-a')!.slots.values())).toEqual(new Set(['b', 'c']));
    expect(new Set(plans.get('only-c')!.slots.values())).toEqual(new Set(['c']));
    expect(new Set(plans.get('not-eu')!.slots.values())).toEqual(new Set(['a', 'c']));
    expect(plans.get('none')).toMatchObject({ pending: 3, pendingReason: 'no suitable node (0 nodes match node.labels.zone==us)' });
    expect(plans.get('none')!.slots.size).toBe(0);
  });

  it('a task on a node that no longer matches is not kept, so it moves; one that matches stays', () => {
    const svc = service('web', { replicas: 2, placement: { constraints: ['node.labels.zone==eu'] } });
    const nodes: NodeSpec[] = [{ id: 'a', labels: { zone: 'eu' } }, { id: 'b', labels: { zone: 'us' } }, { id: 'c', labels: { zone: 'eu' } }];
    const plan = planPlacement(snap(nodes, [svc], [task('web', 1, 'a'), task('web', 2, 'b')])).get('web')!;
    expect(plan.slots.get(1)).toBe('a');
    expect(plan.slots.get(2)).not.toBe('b');
  });

  it('a label added to a node brings tasks to it; removed, they leave', () => {
    const svc = service('gpu', { replicas: 1, placement: { constraints: ['node.labels.gpu==1'] } });
    const none = settle(snap(abc, [svc]));
    expect(none).toEqual([]);
    const labelled = settle(snap([{ id: 'a' }, { id: 'b' }, { id: 'c', labels: { gpu: '1' } }], [svc], none));
    expect(nodesOf(labelled, 'gpu')).toEqual(['c']);
    expect(planPlacement(snap(abc, [svc], labelled)).get('gpu')).toMatchObject({ pending: 1 });
  });

  it('a label on a live node without a persistent record counts (older agents)', () => {
    const input = snap([{ id: 'a' }], [service('web', { replicas: 1, placement: { constraints: ['node.labels.rack==r1'] } })]);
    input.nodeInfo = [];
    input.nodes = [{ id: 'a', name: 'a', underlayIp: '192.0.2.1', lease: '1', labels: { rack: 'r1' } }];
    expect([...planPlacement(input).get('web')!.slots.values()]).toEqual(['a']);
  });

  it('a constraint that cannot be parsed (hand-built input) places nothing: fail closed', () => {
    const plan = planPlacement(snap(abc, [service('web', { placement: { constraints: ['node.role==manager'] } })])).get('web')!;
    expect(plan.slots.size).toBe(0);
    expect(plan.pending).toBe(3);
  });
});

describe('replicas-max-per-node', () => {
  it('4 replicas, max 1 per node, 3 nodes: 3 placed, one per node, 1 pending', () => {
    const plan = planPlacement(snap(abc, [service('web', { replicas: 4, placement: { constraints: [], maxReplicasPerNode: 1 } })])).get('web')!;
    expect(new Set(plan.slots.values()).size).toBe(3);
    expect(plan).toMatchObject({ desired: 4, pending: 1, pendingReason: 'no suitable node (3 nodes active, max 1 per node)' });
  });

  it('a node joining takes the pending replica', () => {
    const svc = service('web', { replicas: 4, placement: { constraints: [], maxReplicasPerNode: 1 } });
    const three = settle(snap(abc, [svc]));
    const four = settle(snap([...abc, { id: 'd' }], [svc], three));
    expect(nodesOf(four, 'web')).toEqual(['a', 'b', 'c', 'd']);
    expect(four.filter((t) => three.some((o) => o.slot === t.slot && o.node === t.node))).toHaveLength(3);
  });

  it('a paused node keeps at most the cap of its tasks', () => {
    const svc = service('web', { replicas: 4, placement: { constraints: [], maxReplicasPerNode: 1 } });
    const plan = planPlacement(snap([{ id: 'a', availability: 'pause' }, { id: 'b' }], [svc], [task('web', 1, 'a'), task('web', 2, 'a')])).get('web')!;
    expect(plan.slots.get(1)).toBe('a');
    expect([...plan.slots.values()].filter((n) => n === 'a')).toHaveLength(1);
    expect(plan.slots.size).toBe(2);
  });

  it('no active node at all: every replica pending, said so', () => {
    const plan = planPlacement(snap([{ id: 'a', availability: 'drain' }], [service('web')])).get('web')!;
    expect(plan).toMatchObject({ pending: 3, pendingReason: 'no suitable node (0 nodes active)' });
  });
});

describe('global mode', () => {
  const g = (extra: Partial<ServiceRecord> = {}) => service('g', { mode: 'global', replicas: 0, ...extra });

  it('one task on every active node, none pending, whatever the replicas field says', () => {
    const tasks = settle(snap(abc, [g({ replicas: 7 })]));
    expect(nodesOf(tasks, 'g')).toEqual(['a', 'b', 'c']);
    expect(planPlacement(snap(abc, [g()], tasks)).get('g')).toMatchObject({ desired: 3, pending: 0 });
  });

  it('a joining node gets a task; nobody else moves; a leaving one frees its slot', () => {
    const before = settle(snap(abc, [g()]));
    const joined = settle(snap([...abc, { id: 'd' }], [g()], before));
    expect(nodesOf(joined, 'g')).toEqual(['a', 'b', 'c', 'd']);
    for (const t of before) expect(joined.find((j) => j.node === t.node)!.slot).toBe(t.slot);
    expect(joined.find((t) => t.node === 'd')!.slot).toBe(4);
    const left = planPlacement(snap([{ id: 'a' }, { id: 'c' }, { id: 'd' }], [g()], joined)).get('g')!;
    expect(new Set(left.slots.values())).toEqual(new Set(['a', 'c', 'd']));
    expect(left.desired).toBe(3);
  });

  it('a drained node has none; a paused one keeps its task and takes no new one', () => {
    const tasks = settle(snap(abc, [g()]));
    const drained = planPlacement(snap([{ id: 'a' }, { id: 'b', availability: 'drain' }, { id: 'c' }], [g()], tasks)).get('g')!;
    expect(new Set(drained.slots.values())).toEqual(new Set(['a', 'c']));
    const paused = planPlacement(snap([{ id: 'a' }, { id: 'b', availability: 'pause' }, { id: 'c' }], [g()], tasks)).get('g')!;
    expect(new Set(paused.slots.values())).toEqual(new Set(['a', 'b', 'c']));
    const pausedWithout = planPlacement(snap([{ id: 'a' }, { id: 'b', availability: 'pause' }, { id: 'c' }], [g()], tasks.filter((t) => t.node !== 'b'))).get('g')!;
    expect(new Set(pausedWithout.slots.values())).toEqual(new Set(['a', 'c']));
  });

  it('constraints narrow the nodes of a global service', () => {
    const plan = planPlacement(snap(abc, [g({ placement: { constraints: ['node.labels.zone!=eu'] } })])).get('g')!;
    expect(new Set(plan.slots.values())).toEqual(new Set(['a', 'c']));
    expect(plan.desired).toBe(2);
  });

  it('draining tasks do not hold a slot in the placement; attached tasks are left out', () => {
    const tasks = [task('g', 1, 'a', 'shutdown'), { ...task('g', 100_001, 'b'), external: true }];
    const plan = planPlacement(snap(abc, [g()], tasks)).get('g')!;
    expect([...plan.slots].sort((x, y) => x[0] - y[0])).toEqual([[1, 'a'], [2, 'b'], [3, 'c']]);
  });
});

describe('determinism', () => {
  it('every node computes the same placement from the same snapshot, in whatever order records come', () => {
    const services = [
      service('web', { replicas: 5, placement: { constraints: ['node.id!=c'], maxReplicasPerNode: 2 } }),
      service('g', { mode: 'global', replicas: 0 }),
      service('api', { replicas: 7 }),
    ];
    const nodes: NodeSpec[] = [{ id: 'a' }, { id: 'b', availability: 'pause' }, { id: 'c' }, { id: 'd', labels: { zone: 'eu' } }];
    const tasks = [task('api', 2, 'b'), task('g', 3, 'c'), task('web', 1, 'd')];
    const one = snap(nodes, services, tasks);
    const other = { ...snap([...nodes].reverse(), [...services].reverse(), [...tasks].reverse()) };
    const flat = (p: ReturnType<typeof planPlacement>) =>
      [...p].map(([name, plan]) => [name, [...plan.slots].sort((x, y) => x[0] - y[0]), plan.pending, plan.pendingReason]).sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    expect(flat(planPlacement(other))).toEqual(flat(planPlacement(one)));
    const mine = ['a', 'b', 'c', 'd'].flatMap((n) => slotsForNode(one, n).map((s) => `${s.service}.${s.slot}`)).sort();
    const all = [...planPlacement(one)].flatMap(([name, plan]) => [...plan.slots.keys()].map((slot) => `${name}.${slot}`)).sort();
    expect(mine).toEqual(all);
  });
});

describe('a placement kept between passes', () => {
  it('is the same answer object while nothing it depends on changed, and a new one when something did', () => {
    const web = service('web', { replicas: 4 });
    const tasks = [task('web', 1, 'a'), task('web', 2, 'b')];
    const first = planPlacement(snap(abc, [web], tasks)).get('web')!;
    // A new snapshot (a node label elsewhere, new arrays), the same record, nodes and slots.
    const again = planPlacement(snap(abc.map((n) => ({ ...n })), [web], [...tasks])).get('web')!;
    expect(again).toBe(first);
    const paused = planPlacement(snap([{ id: 'a' }, { id: 'b', availability: 'pause' }, { id: 'c' }], [web], tasks)).get('web')!;
    expect(paused).not.toBe(first);
    expect([...paused.slots].filter(([, n]) => n === 'b').map(([s]) => s)).toEqual([2]);
    // A record changed in place is not answered from the kept placement.
    web.replicas = 6;
    expect(planPlacement(snap(abc, [web], tasks)).get('web')!.slots.size).toBe(6);
  });
});
