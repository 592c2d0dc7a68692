import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn } from '../../src/sandbox/exec.js';
import { close } from '../../src/sandbox/libc.js';
import { AF_INET, socket } from '../../src/sandbox/libc-sockets.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { capabilitiesInMask, effectiveCapabilities } from '../../src/tasks/capabilities.js';
import { demoAppCommand } from '../../src/tasks/demo-apps.js';
import { readProcessNetnsInode, readProcStat } from '../../src/tasks/proc-stat.js';
import { TaskSupervisor, type TaskStateEvent, type TaskSupervisorOptions } from '../../src/tasks/supervisor.js';
import { readTaskMeta, taskPaths, writeTaskMeta } from '../../src/tasks/task-meta.js';

// Every task runs in a namespace of this throwaway directory; cleanup kills whatever still
// runs in those namespaces (and nothing else) before removing them.
const root = `/run/meshnet-test-${randomBytes(4).toString('hex')}`;
const netns = new NetnsDir(`${root}/netns`);
const RESOLV = 'nameserver 127.0.0.11\noptions ndots:0\n';
const ADDR = '10.77.0.2';
const fastPolicy = { initialDelayMs: 50, maxDelayMs: 400, maxCrashes: 3, windowMs: 60_000 };

let nsPath = '';
const supervisors: TaskSupervisor[] = [];
const foreign: ChildProcess[] = [];

interface Harness {
  sup: TaskSupervisor;
  events: TaskStateEvent[];
  stateDir: string;
}

function harness(name: string, options: TaskSupervisorOptions = {}): Harness {
  const events: TaskStateEvent[] = [];
  const stateDir = `${root}/${name}`;
  const sup = new TaskSupervisor({ stateDir, restartPolicy: fastPolicy, onStateChange: (e) => events.push(e), ...options });
  supervisors.push(sup);
  return { sup, events, stateDir };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function curl(port = 80): Promise<string | undefined> {
  const r = await execIn(nsPath, ['curl', '-sS', '--max-time', '2', `http://${ADDR}:${port}/`], { allowFailure: true, timeoutMs: 5_000 });
  return r.code === 0 ? r.stdout : undefined;
}

function alive(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== null && st.state !== 'Z';
}

function webSpec(taskId: string, port: number) {
  return {
    taskId,
    netnsPath: nsPath,
    command: demoAppCommand('echo-http', port),
    env: { MESHNET_TASK_NAME: taskId, MESHNET_NODE: 'host-a' },
    resolvConf: RESOLV,
  };
}

beforeAll(async () => {
  nsPath = netns.create('tasks');
  await execIn(nsPath, ['ip', 'link', 'set', 'lo', 'up']);
  await execIn(nsPath, ['ip', 'addr', 'add', `${ADDR}/32`, 'dev', 'lo']);
});

afterAll(async () => {
  for (const sup of supervisors) sup.close();
  for (const child of foreign) child.kill('SIGKILL');
  const ours = nsPath && existsSync(nsPath) ? String(statSync(nsPath).ino) : null;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (ours !== null && readProcessNetnsInode(pid) === ours) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  netns.removeAll();
  rmSync(root, { recursive: true, force: true });
});

describe('TaskSupervisor', () => {
  it('runs the echo server in the task namespace; it names its task, node and client', async () => {
    const { sup, events } = harness('echo');
    const info = await sup.ensureRunning(webSpec('web.1', 80));
    expect(info.state).toBe('running');
    expect(info.pid).toBeGreaterThan(0);
    expect(readTaskMeta(taskPaths(sup.stateDir, 'web.1'))?.pid).toBe(info.pid);
    expect(readFileSync(taskPaths(sup.stateDir, 'web.1').pid, 'utf8').trim()).toBe(String(info.pid));
    const body = await waitFor('the echo server to answer', () => curl());
    expect(body.trim()).toBe(`web.1 on host-a (client ${ADDR})`);
    const json = await execIn(nsPath, ['curl', '-sS', '-H', 'Accept: application/json', `http://${ADDR}/`]);
    expect(JSON.parse(json.stdout)).toEqual({ task: 'web.1', node: 'host-a', client: ADDR });
    expect(readProcessNetnsInode(info.pid!)).toBe(String(statSync(nsPath).ino));
    await sup.stop('web.1', { graceMs: 2_000, keepLogs: true });
    const requests = readFileSync(info.logPath, 'utf8').split('\n').filter((l) => l.includes('"request"')).map((l) => JSON.parse(l));
    expect(requests[0]).toMatchObject({ event: 'request', task: 'web.1', node: 'host-a', client: ADDR });
    expect(events.map((e) => e.state)).toEqual(['starting', 'running', 'shutdown']);
  });

  it('starts a task holding none of the agent\'s descriptors, even one a C library opened without close-on-exec', async () => {
    // As libnftables opens its netlink socket (one per namespace the agent programs): a task that inherited
    // one could rewrite another namespace's nftables.
    const leaky = socket(AF_INET, 2, 0);
    try {
      const leakyInode = readlinkSync(`/proc/self/fd/${leaky}`);
      const { sup } = harness('fds');
      const info = await sup.ensureRunning({ ...webSpec('fds.1', 81), command: ['sleep', '30'] });
      const pid = await waitFor('the task to exec sleep', () => readFileSync(`/proc/${info.pid!}/cmdline`, 'utf8').startsWith('sleep') && info.pid!);
      const held = readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`));
      expect(held).not.toContain(leakyInode);
      expect(held.filter((t) => t.startsWith('socket:'))).toEqual([]);
      await sup.stop('fds.1', { graceMs: 1_000 });
    } finally {
      close(leaky);
    }
  });

  it('runs the UDP echo: one reply datagram naming task and node per datagram', async () => {
    const { sup } = harness('udp');
    const info = await sup.ensureRunning({
      taskId: 'dns.9',
      netnsPath: nsPath,
      command: demoAppCommand('echo-udp', 5353),
      env: { MESHNET_NODE: 'host-c' },
      resolvConf: RESOLV,
    });
    await waitFor('the UDP server to listen', () => readFileSync(info.logPath, 'utf8').includes('"listening"'));
    const r = await execIn(nsPath, ['socat', '-t', '0.5', '-', `UDP:${ADDR}:5353`], { input: 'ping\n', timeoutMs: 5_000 });
    expect(r.stdout).toBe('dns.9 on host-c\n');
    await waitFor('the datagram log line', () => readFileSync(info.logPath, 'utf8').includes(`"client":"${ADDR}"`));
    await sup.stop('dns.9', { graceMs: 2_000 });
  });

  it('restarts a task killed from outside with a new pid and reports the exit', async () => {
    const { sup, events } = harness('kill');
    const first = await sup.ensureRunning(webSpec('web.2', 82));
    await waitFor('web.2 to answer', () => curl(82));
    process.kill(first.pid!, 'SIGKILL');
    const exited = await waitFor('the exit event', () => events.find((e) => e.state === 'exited'));
    expect(exited).toMatchObject({ taskId: 'web.2', signal: 'SIGKILL', exitCode: null });
    const restarted = await waitFor('the restart', () => events.find((e) => e.state === 'running' && e.pid !== first.pid));
    expect(restarted.restarts).toBe(1);
    expect(sup.get('web.2')?.pid).toBe(restarted.pid);
    expect(await waitFor('web.2 to answer again', () => curl(82))).toContain('web.2 on host-a');
  });

  it('bind-mounts the prepared resolv.conf and sets the hostname, leaving the host untouched', async () => {
    const hostResolv = readFileSync('/etc/resolv.conf', 'utf8');
    const { sup } = harness('resolv');
    const info = await sup.ensureRunning({
      taskId: 'dns.1',
      netnsPath: nsPath,
      command: ['sh', '-c', 'cat /etc/resolv.conf; echo "host=$(cat /proc/sys/kernel/hostname) task=$MESHNET_TASK_ID"; exec sleep 30'],
      resolvConf: RESOLV,
      hostname: 'dns-1',
    });
    const log = await waitFor('the task output', () => {
      const text = readFileSync(info.logPath, 'utf8');
      return text.includes('host=') ? text : undefined;
    });
    expect(log).toBe(`${RESOLV}host=dns-1 task=dns.1\n`);
    expect(readFileSync('/etc/resolv.conf', 'utf8')).toBe(hostResolv);
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).toBe(hostname());

    // Same spec again: nothing restarts; new resolv.conf content shows inside the running task at once.
    const newResolv = 'nameserver 127.0.0.11\noptions ndots:0 attempts:3\n';
    const again = await sup.ensureRunning({ ...(await specOf(sup, 'dns.1')), resolvConf: newResolv });
    expect(again.pid).toBe(info.pid);
    const seen = await execIn(null, ['nsenter', `--target=${info.pid}`, '--mount', '--', 'cat', '/etc/resolv.conf']);
    expect(seen.stdout).toBe(newResolv);
  });

  it('kills what a task left behind in its process group when it exits, before restarting it', async () => {
    const { sup, events } = harness('leftovers');
    const info = await sup.ensureRunning({
      taskId: 'daemon.1',
      netnsPath: nsPath,
      command: ['sh', '-c', 'sleep 30 & echo "child=$!"; sleep 0.3; exit 7'],
      resolvConf: RESOLV,
    });
    const child = Number(await waitFor('the background child', () => /child=(\d+)/.exec(readFileSync(info.logPath, 'utf8'))?.[1]));
    expect(alive(child)).toBe(true);
    await waitFor('the exit', () => events.find((e) => e.state === 'exited' && e.exitCode === 7));
    await waitFor('the leftover to be killed', () => !alive(child), 2_000);
    await sup.stop('daemon.1', { graceMs: 500 });
  });

  it('marks a crash-looping task failed after maxCrashes exits and stops restarting it', async () => {
    const { sup, events } = harness('crash');
    await sup.ensureRunning({ taskId: 'boom.1', netnsPath: nsPath, command: ['sh', '-c', 'echo boom; exit 3'], resolvConf: RESOLV });
    const failed = await waitFor('the failed event', () => events.find((e) => e.state === 'failed'));
    expect(failed.exitCode).toBe(3);
    expect(failed.message).toMatch(/3 of 3 exits/);
    await new Promise((r) => setTimeout(r, 500));
    expect(events.filter((e) => e.state === 'running')).toHaveLength(3);
    expect(events.filter((e) => e.state === 'exited').map((e) => e.exitCode)).toEqual([3, 3]);
    // The short reason the agent puts in the task record for `task ls`.
    expect(sup.get('boom.1')).toMatchObject({ state: 'failed', pid: null, restarts: 2, reason: 'exit 3' });
    expect(readFileSync(sup.get('boom.1')!.logPath, 'utf8')).toBe('boom\nboom\nboom\n');
    // Level-triggered callers keep asking; a failed task stays failed until stopped.
    expect((await sup.ensureRunning({ taskId: 'boom.1', netnsPath: nsPath, command: ['sh', '-c', 'echo boom; exit 3'], resolvConf: RESOLV })).state).toBe('failed');
  });

  it('fails a task whose command does not exist, saying so, and one whose namespace is gone', async () => {
    const { sup, events } = harness('missing');
    await sup.ensureRunning({ taskId: 'typo.1', netnsPath: nsPath, command: ['no-such-command-xyz'], resolvConf: RESOLV });
    const failed = await waitFor('the failed event', () => events.find((e) => e.taskId === 'typo.1' && e.state === 'failed'));
    expect(failed).toMatchObject({ exitCode: 127 });
    expect(failed.message).toMatch(/command not found/);
    await sup.ensureRunning({ taskId: 'nons.1', netnsPath: `${root}/netns/absent`, command: ['sleep', '1'], resolvConf: RESOLV });
    const noNs = await waitFor('the failed event', () => events.find((e) => e.taskId === 'nons.1' && e.state === 'failed'));
    expect(noNs.message).toMatch(/network namespace .*absent does not exist/);
    expect(events.filter((e) => e.taskId === 'nons.1' && e.state === 'running')).toEqual([]);
  });

  it('stops with SIGTERM (the echo server drains), keeps logs on request, is idempotent', async () => {
    const { sup, events } = harness('stop');
    const info = await sup.ensureRunning(webSpec('web.3', 83));
    await waitFor('web.3 to answer', () => curl(83));
    const t0 = Date.now();
    await sup.stop('web.3', { graceMs: 5_000, keepLogs: true });
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(alive(info.pid!)).toBe(false);
    const log = readFileSync(info.logPath, 'utf8');
    expect(log).toContain('"event":"draining"');
    expect(log).toContain('"event":"stopped"');
    expect(existsSync(taskPaths(sup.stateDir, 'web.3').meta)).toBe(false);
    expect(events.at(-1)?.state).toBe('shutdown');
    expect(sup.list()).toEqual([]);

    const stubborn = await sup.ensureRunning({ taskId: 'stubborn.1', netnsPath: nsPath, command: ['sh', '-c', 'trap "" TERM; sleep 30 & wait; sleep 30'], resolvConf: RESOLV });
    await new Promise((r) => setTimeout(r, 200));
    await sup.stop('stubborn.1', { graceMs: 300 });
    expect(alive(stubborn.pid!)).toBe(false);
    expect(existsSync(taskPaths(sup.stateDir, 'stubborn.1').dir)).toBe(false);
    await sup.stop('stubborn.1');
    await sup.stop('never-existed');
  });

  it('adopts running tasks after a supervisor restart without restarting them, then watches them', async () => {
    const a = harness('adopt');
    const first = await a.sup.ensureRunning(webSpec('web.4', 84));
    await waitFor('web.4 to answer', () => curl(84));
    a.sup.close();

    const b = harness('adopt');
    const found = await b.sup.adoptOrphans();
    expect(found).toEqual([expect.objectContaining({ taskId: 'web.4', adopted: true, pid: first.pid, state: 'running' })]);
    expect((await b.sup.ensureRunning(webSpec('web.4', 84))).pid).toBe(first.pid);
    expect(b.events.filter((e) => e.state === 'starting')).toEqual([]);

    process.kill(first.pid!, 'SIGKILL');
    const exited = await waitFor('the adopted task exit', () => b.events.find((e) => e.state === 'exited'));
    expect(exited.message).toMatch(/exit status unknown/);
    const restarted = await waitFor('the restart', () => b.events.find((e) => e.state === 'running' && e.pid !== first.pid));
    expect(restarted.pid).not.toBeNull();
    expect(await waitFor('web.4 to answer again', () => curl(84))).toContain('web.4 on host-a');
  });

  it('never adopts (nor signals) a foreign process whose pid was written to the pid file', async () => {
    const a = harness('foreign');
    const first = await a.sup.ensureRunning({ taskId: 'sleep.1', netnsPath: nsPath, command: ['sleep', '30'], resolvConf: RESOLV });
    a.sup.close();
    process.kill(first.pid!, 'SIGKILL');
    await waitFor('the original to die', () => !alive(first.pid!));
    // Start times count clock ticks (10 ms): a stranger started in the original's tick would be told apart
    // by its namespace instead, which this test does not mean to exercise.
    await new Promise((r) => setTimeout(r, 30));

    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    foreign.push(stranger);
    const paths = taskPaths(a.stateDir, 'sleep.1');
    const meta = readTaskMeta(paths)!;
    writeTaskMeta(paths, { ...meta, pid: stranger.pid! });

    const b = harness('foreign');
    const [found] = await b.sup.adoptOrphans();
    expect(found).toMatchObject({ taskId: 'sleep.1', adopted: false });
    expect(found!.note).toMatch(/another process/);
    const restarted = await waitFor('a fresh start', () => b.events.find((e) => e.state === 'running'));
    expect(restarted.pid).not.toBe(stranger.pid);
    expect(alive(stranger.pid!)).toBe(true);

    writeFileSync(paths.pid, `${stranger.pid}\n`);
    b.sup.close();
    const c = harness('foreign');
    expect((await c.sup.adoptOrphans())[0]).toMatchObject({ adopted: false, note: expect.stringMatching(/disagrees/) });
    expect(alive(stranger.pid!)).toBe(true);
    await c.sup.stop('sleep.1', { graceMs: 500 });
    expect(alive(restarted.pid!)).toBe(true); // the unverified pid was not signalled either
    process.kill(restarted.pid!, 'SIGKILL');
  });

  it('keeps a task running when the process that started it is killed; a new supervisor adopts it', async () => {
    const stateDir = `${root}/orphan`;
    const { host, pid } = await startSupervisorProcess(stateDir);
    expect(readProcStat(pid)?.ppid).toBe(host.pid);
    host.kill('SIGKILL');
    await waitFor('the supervisor process to die', () => host.exitCode !== null || host.signalCode !== null);
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(pid)).toBe(true);
    expect(readProcStat(pid)?.ppid).not.toBe(host.pid);

    const b = harness('orphan'); // takes over the dead process's claim on the state directory
    expect(() => new TaskSupervisor({ stateDir })).toThrow(/owned by a running supervisor/);
    expect(await b.sup.adoptOrphans()).toEqual([expect.objectContaining({ taskId: 'orphan.1', adopted: true, pid })]);
    await b.sup.stop('orphan.1', { graceMs: 1_000 });
    expect(alive(pid)).toBe(false);
  });

  it('runs tasks in a slave mount namespace: a namespace file unmounted on the host vanishes inside too', async () => {
    const victim = netns.create('victim');
    const { sup } = harness('propagation');
    const info = await sup.ensureRunning({ taskId: 'prop.1', netnsPath: nsPath, command: ['sleep', '30'], resolvConf: RESOLV });
    const mountsInTask = async () =>
      (await execIn(null, ['nsenter', `--target=${info.pid}`, '--mount', '--', 'cat', '/proc/self/mountinfo'])).stdout;
    expect(await mountsInTask()).toContain(` ${victim} `);
    expect(await mountsInTask()).toContain(' /etc/resolv.conf ');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(' /etc/resolv.conf ');
    netns.delete('victim');
    expect(await mountsInTask()).not.toContain(` ${victim} `);
    await sup.stop('prop.1', { graceMs: 500 });
  });

  it('replaces the process when the spec changes and reaps tasks the agent no longer wants', async () => {
    const { sup } = harness('reap');
    const spec = (id: string) => ({ taskId: id, netnsPath: nsPath, command: ['sleep', '30'], resolvConf: RESOLV });
    const keep = await sup.ensureRunning(spec('keep.1'));
    const drop = await sup.ensureRunning(spec('drop.1'));
    const replaced = await sup.ensureRunning({ ...spec('keep.1'), env: { VERSION: '2' } });
    expect(replaced.pid).not.toBe(keep.pid);
    await waitFor('the old process to go', () => !alive(keep.pid!));
    expect(await sup.reap(['keep.1'], { graceMs: 1_000 })).toEqual(['drop.1']);
    expect(alive(drop.pid!)).toBe(false);
    expect(alive(replaced.pid!)).toBe(true);
    expect(sup.list().map((t) => t.taskId)).toEqual(['keep.1']);
    expect(await sup.reap([], { graceMs: 1_000 })).toEqual(['keep.1']);
    expect(readdirSync(sup.stateDir)).toEqual(['.owner']);
  });

  it('runs a task as the given user with the capabilities left after --cap-drop, and always with no_new_privs', async () => {
    const { sup } = harness('privileges');
    const asNobody = await sup.ensureRunning({ taskId: 'priv.1', netnsPath: nsPath, command: ['sleep', '30'], resolvConf: RESOLV, user: 'nobody', capDrop: ['NET_RAW'] });
    const status = await execedStatus(asNobody.pid!, 'sleep');
    expect(status['Uid']).toBe('65534\t65534\t65534\t65534');
    expect(status['Gid']).toBe('65534\t65534\t65534\t65534');
    expect(status['NoNewPrivs']).toBe('1');
    const bounding = capabilitiesInMask(status['CapBnd']!);
    expect(bounding).toContain('NET_BIND_SERVICE');
    expect(bounding).not.toContain('NET_RAW');
    expect(capabilitiesInMask(status['CapEff']!)).toEqual([]);
    expect(readProcessNetnsInode(asNobody.pid!)).toBe(String(statSync(nsPath).ino));

    // Root without options: Docker's default set, nothing like SYS_ADMIN or NET_ADMIN.
    const asRoot = await sup.ensureRunning({ taskId: 'priv.2', netnsPath: nsPath, command: ['sleep', '30'], resolvConf: RESOLV });
    const rootStatus = await execedStatus(asRoot.pid!, 'sleep');
    expect(rootStatus['Uid']).toBe('0\t0\t0\t0');
    expect(rootStatus['NoNewPrivs']).toBe('1');
    expect(capabilitiesInMask(rootStatus['CapBnd']!)).toEqual(effectiveCapabilities());
    expect(capabilitiesInMask(rootStatus['CapEff']!)).not.toContain('SYS_ADMIN');
    await sup.reap([], { graceMs: 500 });
  });

  it('runs a health check in the task\'s namespaces as its user, and restarts the process when it turns unhealthy', async () => {
    const { sup, events } = harness('health');
    const sick = `${root}/health-sick`;
    // Passes only inside the task: its user, its environment, its resolv.conf bind mount, its network namespace.
    const cmd = [
      'test "$(id -u)" = 65534', 'test "$MESHNET_TASK_ID" = hc.1', 'grep -q 127.0.0.11 /etc/resolv.conf',
      `ip -o addr show lo | grep -q ${ADDR}`, `test ! -e ${sick}`,
    ].join(' && ');
    const first = await sup.ensureRunning({ taskId: 'hc.1', netnsPath: nsPath, command: ['sleep', '60'], resolvConf: RESOLV, user: 'nobody', healthcheck: { cmd, intervalMs: 200, timeoutMs: 5_000, retries: 2, startPeriodMs: 0 } });
    expect(first.health?.status).toBe('starting');
    await waitFor('healthy', () => sup.get('hc.1')?.health?.status === 'healthy');
    writeFileSync(sick, '');
    const restarted = await waitFor('a restart after two failed checks', () => {
      const info = sup.get('hc.1');
      return info && info.restarts === 1 && info.state === 'running' ? info : undefined;
    });
    expect(restarted.pid).not.toBe(first.pid);
    expect(restarted.reason).toBe('unhealthy (health check exit 1)');
    expect(restarted.health?.status).toBe('starting');
    expect(restarted.health?.log.map((r) => r.exitCode)).toEqual([0, 1, 1]);
    expect(events.some((e) => e.state === 'exited' && /stopped as unhealthy/.test(e.message))).toBe(true);
    rmSync(sick);
    await waitFor('healthy again', () => sup.get('hc.1')?.health?.status === 'healthy');
    await sup.reap([], { graceMs: 500 });
  });

  it('leaves a task that exits 0 down as complete under --restart-condition on-failure, also after a supervisor restart', async () => {
    const { sup, events, stateDir } = harness('complete');
    await sup.ensureRunning({ taskId: 'job.1', netnsPath: nsPath, command: ['true'], resolvConf: RESOLV, restartPolicy: { condition: 'on-failure' } });
    await waitFor('complete', () => sup.get('job.1')?.state === 'shutdown');
    expect(events.at(-1)!.message).toMatch(/exited with code 0; complete, not restarted \(--restart-condition on-failure\)/);
    expect(sup.get('job.1')).toMatchObject({ restarts: 0, reason: 'exit 0' });
    sup.close();
    const again = harness('complete-2', { stateDir });
    const [found] = await again.sup.adoptOrphans();
    expect(found).toMatchObject({ taskId: 'job.1', state: 'shutdown', note: 'completed before the supervisor restarted; not restarted' });
    await again.sup.reap([], { graceMs: 500 });
  });

  it('lets a non-root task bind port 80 with --cap-add NET_BIND_SERVICE (ambient), and not without it', async () => {
    const { sup, events } = harness('bind80');
    const web = await sup.ensureRunning({ ...webSpec('low.1', 84), command: demoAppCommand('echo-http', 80), user: '65534:65534', capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'] });
    expect(await waitFor('the echo server on :80 as nobody', () => curl(80))).toContain('low.1 on host-a');
    expect(statusOf(web.pid!)['Uid']).toBe('65534\t65534\t65534\t65534');
    await sup.stop('low.1', { graceMs: 2_000 });
    await sup.ensureRunning({ ...webSpec('low.2', 80), user: '65534:65534', capDrop: ['ALL'] });
    const refused = await waitFor('the bind to fail', () => events.find((e) => e.taskId === 'low.2' && e.state === 'exited'));
    expect(refused.exitCode).not.toBe(0);
    expect(readFileSync(taskPaths(sup.stateDir, 'low.2').log, 'utf8')).toMatch(/EACCES/);
    await sup.stop('low.2', { graceMs: 500 });
  });

  it('fails a task whose user does not exist at once, saying which and what to do', async () => {
    const { sup, events } = harness('nouser');
    const info = await sup.ensureRunning({ taskId: 'ghost.1', netnsPath: nsPath, command: ['sleep', '30'], resolvConf: RESOLV, user: 'no-such-user-xyz' });
    expect(info).toMatchObject({ state: 'failed', pid: null });
    expect(info.reason).toMatch(/^user "no-such-user-xyz" does not exist on this node: create it/);
    const failed = events.find((e) => e.state === 'failed');
    expect(failed?.message).toMatch(/user "no-such-user-xyz" does not exist on this node: create it/);
    expect(events.filter((e) => e.state === 'running')).toEqual([]);
    await sup.stop('ghost.1', { graceMs: 500 });
  });

  it('keeps task state private: directories 0700, meta.json (the environment), pid and stdout.log 0600', async () => {
    const { sup, stateDir } = harness('modes');
    const info = await sup.ensureRunning({ ...webSpec('secret.1', 85), env: { API_TOKEN: 's3cret' } });
    const paths = taskPaths(stateDir, 'secret.1');
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(paths.dir).mode & 0o777).toBe(0o700);
    for (const file of [paths.meta, paths.pid, paths.log]) expect([file, statSync(file).mode & 0o777]).toEqual([file, 0o600]);
    expect(readFileSync(paths.meta, 'utf8')).toContain('s3cret');
    // The bind-mounted resolv.conf stays readable for a task that does not run as root.
    expect(statSync(paths.resolvConf).mode & 0o777).toBe(0o644);
    await sup.stop(info.taskId, { graceMs: 500 });
  });

  it('rotates a running task\'s log by size and keeps at most maxLogFiles files', async () => {
    const { sup } = harness('logs', { maxLogBytes: 50_000, maxLogFiles: 3, logCheckIntervalMs: 50 });
    const chatty = 'for i in 1 2 3 4 5 6 7 8 9 10; do head -c 100000 /dev/zero | tr "\\0" x; echo " burst $i"; sleep 0.3; done; echo finished; exec sleep 30';
    const info = await sup.ensureRunning({ taskId: 'chatty.1', netnsPath: nsPath, command: ['sh', '-c', chatty], resolvConf: RESOLV });
    const files = () => readdirSync(taskPaths(sup.stateDir, 'chatty.1').dir).filter((f) => f.startsWith('stdout.log')).sort();
    await waitFor('the last burst', () => files().some((f) => readFileSync(`${taskPaths(sup.stateDir, 'chatty.1').dir}/${f}`, 'utf8').includes('finished')), 20_000);
    expect(files()).toEqual(['stdout.log', 'stdout.log.1', 'stdout.log.2']);
    expect(sup.get('chatty.1')).toMatchObject({ pid: info.pid, restarts: 0 });
    const kept = files().reduce((sum, f) => sum + statSync(`${taskPaths(sup.stateDir, 'chatty.1').dir}/${f}`).size, 0);
    expect(kept).toBeLessThan(1_000_000);
    expect(readFileSync(`${info.logPath}.1`, 'utf8')).toMatch(/burst \d+\n/);
    await sup.stop('chatty.1', { graceMs: 500 });
  });
});

/** /proc/<pid>/status once the launcher chain (nsenter, unshare, sh, setpriv) has exec'd `program`. */
async function execedStatus(pid: number, program: string): Promise<Record<string, string>> {
  return waitFor(`process ${pid} to exec ${program}`, () => {
    const status = statusOf(pid);
    return status['Name'] === program ? status : undefined;
  });
}

/** Fields of /proc/<pid>/status. */
function statusOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

/** Starts dist/test/tasks/supervisor-host.js and resolves with the task it printed and its own process. */
async function startSupervisorProcess(stateDir: string): Promise<{ host: ChildProcess; pid: number }> {
  const script = fileURLToPath(new URL('../../dist/test/tasks/supervisor-host.js', import.meta.url));
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` before the integration tests`);
  const host = spawn(process.execPath, [script, stateDir, nsPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  foreign.push(host);
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    host.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
    });
    host.once('exit', (code) => reject(new Error(`supervisor-host exited with ${code} before starting its task`)));
  });
  return { host, pid: (JSON.parse(line) as { pid: number }).pid };
}

/** The spec the supervisor holds for a task, rebuilt from what it reports (for re-submission). */
async function specOf(sup: TaskSupervisor, taskId: string) {
  const meta = readTaskMeta(taskPaths(sup.stateDir, taskId))!;
  return { taskId, netnsPath: meta.spec.netnsPath, command: meta.spec.command, resolvConf: RESOLV, ...(meta.spec.hostname ? { hostname: meta.spec.hostname } : {}) };
}
