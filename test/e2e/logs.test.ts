import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { Lab } from '../lab/lab.js';
import { CLI_PATH, ClusterLab } from '../../src/lab/cluster-lab.js';
import { readNodeStatuses } from '../../src/agent/node-status.js';

// Issue 12 item 2 as an operator meets it on 3 hosts: logs of every replica from the agent of each
// task's node (the CLI in the root namespace reaches the agents in the host namespaces through their
// unix sockets), a tail, a follow, and why a task failed in task ls.

let lab: Lab;
let cl: ClusterLab;

const CHATTY = 'for i in 1 2 3 4 5; do echo "line $i of $MESHNET_TASK_ID"; done; exec sleep 100000';
const TICKER = 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done';

beforeAll(async () => {
  lab = await Lab.create(3, { tag: 'logs-e2e' });
  cl = new ClusterLab(lab, ['--lease-ttl', '3', '--drain-seconds', '1', '--ready-deadline-seconds', '3']);
  await cl.startAll();
  for (const [name, replicas, script] of [['chatty', '3', CHATTY], ['ticker', '1', TICKER]] as const) {
    const r = cl.cli(['service', 'create', '--name', name, '--replicas', replicas, '--', 'sh', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
  }
  // Runs, never listens on its target port: task ls says so once the readiness deadline (30 s) has passed.
  const mute = cl.cli(['service', 'create', '--name', 'mute', '-d', '-p', '8500:80', '--', 'sleep', '100000']);
  expect(mute.code, mute.stderr).toBe(0);
  // Every node has published its agent API endpoint (its unix socket: the lab has no TLS material).
  const deadline = Date.now() + 30_000;
  while ((await cl.withCluster(async (_c, s) => (await readNodeStatuses(s)).filter((st) => st.api?.startsWith('unix:')).length)) < 3) {
    if (Date.now() > deadline) throw new Error(`the nodes advertise no agent API endpoints\n${cl.logTails(8)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 240_000);

afterAll(async () => {
  await cl?.stopAll();
  await lab?.destroy();
});

/** Runs `meshnet ARGS` in the background; resolves when `ready` appears on stdout. */
function follow(args: string[], ready: RegExp) {
  const child = spawn(process.execPath, [CLI_PATH, '--store', cl.store, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitOut = async (re: RegExp, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} in the output of meshnet ${args.join(' ')}:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { child, exited, waitOut, out: () => out, err: () => err, ready: waitOut(ready) };
}

describe('meshnet service logs and task logs', () => {
  it('service logs shows every replica\'s lines from all three hosts, prefixed TASK@NODE', async () => {
    const tasks = await cl.withCluster((c) => c.listTasks({ service: 'chatty' }));
    expect(new Set(tasks.map((t) => t.node))).toEqual(new Set(['host-a', 'host-b', 'host-c']));
    const r = cl.cli(['service', 'logs', 'chatty']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(15);
    for (const t of tasks) {
      for (let i = 1; i <= 5; i++) expect(lines).toContain(`chatty.${t.slot}@${t.node} | line ${i} of ${t.id}`);
    }
  });

  it('task logs --tail 2 shows the last two lines; --json gives one object a line', async () => {
    const [t] = await cl.withCluster((c) => c.listTasks({ service: 'chatty' }));
    const r = cl.cli(['task', 'logs', '--tail', '2', `chatty.${t!.slot}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`chatty.${t!.slot}@${t!.node} | line 4 of ${t!.id}\nchatty.${t!.slot}@${t!.node} | line 5 of ${t!.id}\n`);
    const j = cl.cli(['task', 'logs', '--tail', '1', '--json', t!.id]);
    expect(JSON.parse(j.stdout)).toEqual({ task: `chatty.${t!.slot}`, node: t!.node, line: `line 5 of ${t!.id}` });
  });

  it('task logs -f streams new lines and ends cleanly on Ctrl-C', async () => {
    const f = follow(['task', 'logs', '-f', '--tail', '1', 'ticker.1'], /tick (\d+)/);
    await f.ready;
    const first = Number(/tick (\d+)/.exec(f.out())![1]);
    await f.waitOut(new RegExp(`tick ${first + 2}\\n`));
    expect(f.out()).toMatch(/^ticker\.1@host-\w \| tick \d+\n/);
    f.child.kill('SIGINT');
    expect(await f.exited).toBe(0);
  });

  it('a follow ends by itself when its task ends', async () => {
    const f = follow(['service', 'logs', '-f', '--tail', '0', 'ticker'], /tick/);
    await f.ready;
    const rm = cl.cli(['service', 'rm', 'ticker']);
    expect(rm.code, rm.stderr).toBe(0);
    const code = await Promise.race([f.exited, new Promise((r) => setTimeout(() => r('still following'), 30_000))]);
    expect(code, f.err()).toBe(0);
  });

  it('task ls shows exit 3 for a task whose command exits 3, and task logs its output', async () => {
    const r = cl.cli(['service', 'create', '--name', 'quitter', '-d', '--', 'sh', '-c', 'echo giving up; exit 3']);
    expect(r.code, r.stderr).toBe(0);
    await cl.waitFor('quitter failed', 60_000, async (c) => (await c.listTasks({ service: 'quitter' }))[0]?.state === 'failed');
    const ls = cl.cli(['task', 'ls', '--service', 'quitter']);
    expect(ls.stdout).toMatch(/quitter\.1\s+host-\w\s+running\s+failed\s+\d+\s+exit 3\s*$/m);
    const logs = cl.cli(['task', 'logs', 'quitter.1']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/^quitter\.1@host-\w \| giving up$/m);
  });

  it('task ls shows a task whose process does not listen on its target port as not listening after --ready-deadline-seconds (3 s here)', async () => {
    await cl.waitFor('mute not listening', 90_000, async (c) => /not listening/.test((await c.listTasks({ service: 'mute' }))[0]?.message ?? ''));
    const ls = cl.cli(['task', 'ls', '--service', 'mute']);
    expect(ls.stdout).toMatch(/mute\.1\s+host-\w\s+running\s+starting\s+0\s+\S+\s+not listening on 80 after 3 s\s*$/m);
  }, 120_000);

  it('refuses an unknown task with exit 2, and a stopped node\'s agent with exit 1 naming the node', async () => {
    const missing = cl.cli(['task', 'logs', 'chatty.9']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no task chatty\.9: give SERVICE\.SLOT/);
    const [t] = await cl.withCluster((c) => c.listTasks({ service: 'chatty' }));
    await cl.stopAgent(t!.node, 'SIGKILL');
    const r = cl.cli(['task', 'logs', `chatty.${t!.slot}`]);
    expect(r.code).toBe(1);
    // Within its lease the node still advertises the dead agent's socket; after it, nothing.
    expect(r.stderr).toMatch(new RegExp(`chatty\\.${t!.slot}@${t!.node}: (cannot reach the agent API at unix:.*is the node's agent running|node ${t!.node} advertises no agent API)`));
  });
});
