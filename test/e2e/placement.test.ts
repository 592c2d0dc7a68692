import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { ClusterLab, ECHO_HTTP } from '../../src/lab/cluster-lab.js';
import type { TaskRecord } from '../../src/model/records.js';

// Issue 13 items 4 and 5 as an operator meets them, on 3 lab hosts with real agents: a constraint on a node
// label, a per-node cap that leaves a replica pending (and says why), and a global service that follows
// nodes being drained and made active again. (Constraint changes moving tasks: src/agent/placement-actions.test.ts.)

let lab: Lab;
let cl: ClusterLab;

const tasksOf = (service: string): Promise<TaskRecord[]> => cl.withCluster((c) => c.listTasks({ service }));
const running = (tasks: TaskRecord[]) => tasks.filter((t) => t.state === 'running' && t.desiredState === 'running');
const app = (port: number) => ['--', process.execPath, ECHO_HTTP, '--port', String(port)];
type Inspect = { status: string; pending: number; pendingReason?: string; tasks: { task: string; node: string }[] };
const inspect = (service: string): Inspect => JSON.parse(cl.cli(['service', 'inspect', service, '--json']).stdout) as Inspect;

/** Waits until `service` runs exactly on `nodes` (sorted, one entry per task) with nothing else left. */
async function waitForNodes(service: string, nodes: string[]): Promise<void> {
  await cl.waitFor(`${service} on ${nodes.join(',')}`, 60_000, async (c) => {
    const tasks = await c.listTasks({ service });
    return tasks.length === nodes.length && JSON.stringify(running(tasks).map((t) => t.node).sort()) === JSON.stringify(nodes);
  });
}

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'placement' });
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1']);
  await cl.startAll();
}, 120_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

describe('placement on three hosts', () => {
  it('a service constrained to a node label runs only on the labelled node', async () => {
    // Node updates go through the model: `node update` has tests of its own, and each CLI start costs seconds on a loaded machine.
    await cl.withCluster((c) => c.updateNode('host-b', { labelAdd: { zone: 'eu' } }));
    const r = cl.cli(['service', 'create', '--name', 'eu', '--replicas', '2', '--constraint', 'node.labels.zone==eu', ...app(80)]);
    expect(r.code, r.stderr).toBe(0);
    expect(running(await tasksOf('eu')).map((t) => t.node)).toEqual(['host-b', 'host-b']);
    expect(inspect('eu')).toMatchObject({ status: '2/2 running', pending: 0, placement: { constraints: ['node.labels.zone==eu'] } });
  }, 90_000);

  it('--replicas-max-per-node 1 with 4 replicas: 3 run, one per host, 1 pending with its reason; create says so', async () => {
    const r = cl.cli(['service', 'create', '--name', 'capped', '--replicas', '4', '--replicas-max-per-node', '1', ...app(81)]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('capped: 3/4 running; 1 pending: no suitable node (3 nodes active, max 1 per node)');
    expect(running(await tasksOf('capped')).map((t) => t.node).sort()).toEqual(['host-a', 'host-b', 'host-c']);
    expect(inspect('capped')).toMatchObject({ status: '3/4 running; 1 pending: no suitable node (3 nodes active, max 1 per node)', pending: 1 });
  }, 90_000);

  it('a global service runs one task per host; a drained host loses its task and gets it back when active', async () => {
    const r = cl.cli(['service', 'create', '--name', 'g', '--mode', 'global', ...app(82)]);
    expect(r.code, r.stderr).toBe(0);
    await waitForNodes('g', ['host-a', 'host-b', 'host-c']);
    expect(inspect('g').tasks.map((t) => t.task).sort()).toEqual(['g.host-a', 'g.host-b', 'g.host-c']);

    await cl.withCluster((c) => c.updateNode('host-c', { availability: 'drain' }));
    await waitForNodes('g', ['host-a', 'host-b']);
    // The capped service lost its host-c replica too, which now waits with the others.
    await waitForNodes('capped', ['host-a', 'host-b']);
    expect(inspect('capped')).toMatchObject({ status: '2/4 running; 2 pending: no suitable node (2 nodes active, max 1 per node)' });

    await cl.withCluster((c) => c.updateNode('host-c', { availability: 'active' }));
    await waitForNodes('g', ['host-a', 'host-b', 'host-c']);
  }, 120_000);

});
