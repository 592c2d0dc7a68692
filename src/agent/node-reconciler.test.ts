import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../log/logger.js';
import { CHECK_ROUNDS, DEEP_ROUNDS, OVERLAY_CHECK_ROUNDS, isTaskTarget, resyncRound, NodeReconciler, reportChanges, type NodeAdapters } from './node-reconciler.js';
import { desiredNode, gwHostIfName, PlanMemo } from './node-plan.js';
import { endpointsFixture, settingsFixture, snapshotFixture } from './agent-fixtures.test-data.js';
import type { ClusterSnapshot } from '../model/cluster.js';
import type { LbTable } from '../vip/lb-table.js';
import type { Surface } from './applied-cache.js';

/** A pretend host: what the fake adapters "programmed", kept across reconcilers like a real kernel; every call counted. */
class FakeHost {
  namespaces = new Set<string>(['unrelated-ns']);
  overlays = new Map<string, string>();
  legs = new Map<string, string>();
  hostRules = '';
  taskRules = new Map<string, string>();
  prefetched: string[][] = [];
  /** The order of resolver attaches, read-aheads and resolver NAT writes. */
  order: string[] = [];
  firewall = new Map<string, string>();
  lb = new Map<string, string>();
  processes = new Map<string, string>();
  closedLbs: string[] = [];
  failOverlay: string | null = null;
  failDns: string | null = null;
  dnsServed = new Set<string>();
  dnsViews = new Map<string, string>();
  dnsNat = new Map<string, string>();
  /** The port every resolver has (a restarted resolver worker may take another). */
  dnsPort = 40000;
  sysctls = new Map<string, string>();
  health = new Map<string, string>();
  unkillable = new Set<string>();
  calls = 0;

  adapters(): NodeAdapters {
    const dir = settings.netnsDir;
    const call = () => void this.calls++;
    const changed = (m: Map<string, string>, k: string, v: unknown) => {
      const s = JSON.stringify(v);
      if (m.get(k) === s) return false;
      m.set(k, s);
      return true;
    };
    return {
      namespaces: {
        dir,
        exists: (n) => (call(), this.namespaces.has(n)),
        create: (n) => (call(), void this.namespaces.add(n)),
        list: () => (call(), [...this.namespaces].sort()),
        path: (n) => `${dir}/${n}`,
        delete: (n) => (call(), void this.namespaces.delete(n)),
      },
      sysctl: (netns, key, value) => (call(), changed(this.sysctls, `${netns} ${key}`, value)),
      gw: {
        ensureBridge: async () => call(),
        legs: async () => (call(), [...this.legs.keys()]),
        bridgeAddressIn: async () => (call(), undefined),
        ensureLeg: async (leg) => (call(), changed(this.legs, leg.hostIf, leg)),
        removeLeg: async (hostIf) => (call(), void this.legs.delete(hostIf)),
      },
      overlay: {
        apply: async (input) => {
          call();
          if (this.failOverlay === input.network.name) throw new Error(`kernel refused ${input.network.name}`);
          return { ops: changed(this.overlays, input.network.name, input) ? ['createBridge'] : [] };
        },
      },
      lbFor: (netns) => ({
        kind: 'nftables' as const,
        apply: async (table: LbTable) => (call(), { changes: changed(this.lb, netns, table) ? table.services.length : 0, durationMs: 0 }),
        reconcile: async (table: LbTable) => (call(), { changes: changed(this.lb, netns, table) ? table.services.length : 0, durationMs: 0 }),
        read: async () => JSON.parse(this.lb.get(netns) ?? '{"services":[]}') as LbTable,
        destroy: async () => void this.lb.delete(netns),
        close: () => void this.closedLbs.push(netns),
      }),
      mesh: {
        applyHost: async (plan) => (call(), changed(new Map([['h', this.hostRules]]), 'h', plan) && ((this.hostRules = JSON.stringify(plan)), true)),
        applyTask: async (rules) => (call(), changed(this.taskRules, rules.netns, rules)),
        applyHostFirewall: async (set) => (call(), changed(this.firewall, set.comment, set)),
        forgetTask: (netns) => void this.taskRules.delete(netns),
        prefetchTasks: async (netns) => void (this.prefetched.push([...netns]), this.order.push('prefetch')),
      },
      health: { reconcile: async (plans) => (call(), changed(this.health, 'host', plans) ? 1 : 0) },
      dns: {
        attach: async (sandbox, view) => {
          call();
          if (this.failDns === sandbox) throw new Error(`cannot serve DNS in ${sandbox}`);
          this.dnsServed.add(sandbox);
          changed(this.dnsViews, sandbox, view);
          this.order.push(`attach ${sandbox.split('/').pop()}`);
        },
        update: async (sandbox, view) => (call(), changed(this.dnsViews, sandbox, view)),
        portOf: (sandbox) => (this.dnsServed.has(sandbox) ? this.dnsPort : undefined),
        applyNat: async (sandbox, port) => (call(), this.order.push(`nat ${sandbox.split('/').pop()}`), changed(this.dnsNat, sandbox, port)),
        detach: async (sandbox) => (call(), void this.dnsServed.delete(sandbox)),
      },
      processes: {
        has: (id) => this.processes.has(id),
        get: (id) => (this.processes.has(id) ? ({ taskId: id, state: 'running', netnsPath: this.processes.get(id)! } as never) : undefined),
        list: () => [...this.processes].map(([taskId, netnsPath]) => ({ taskId, netnsPath }) as never),
        ensureRunning: async (spec) => (call(), this.processes.set(spec.taskId, spec.netnsPath), { taskId: spec.taskId } as never),
        stop: async (id) => {
          call();
          if (this.unkillable.has(id)) throw new Error(`task ${id} did not exit after SIGKILL (TASK_UNKILLABLE)`);
          this.processes.delete(id);
        },
      },
      close: () => undefined,
    };
  }
}

const settings = settingsFixture('host-a');
const endpoints = endpointsFixture.slice(0, 2);
const memo = new PlanMemo();
const planOf = (snap: ClusterSnapshot = snapshotFixture()) => desiredNode(snap, settings, { gwAddresses: {}, unusableExternal: new Set(), ingressEndpoints: endpoints, now: Date.now() }, memo);
const reconciler = (host: FakeHost, log = silentLogger()) => new NodeReconciler(host.adapters(), { resolvConf: 'nameserver 127.0.0.11\n', log });

describe('NodeReconciler with fake adapters', () => {
  it('builds everything on an empty host; a normal pass of the same plan calls no adapter at all', async () => {
    const host = new FakeHost();
    const rec = reconciler(host);
    const snap = snapshotFixture();
    const first = await rec.apply(planOf(snap), { resync: true });
    expect(first.errors).toEqual([]);
    // meshRules: the three host firewall owners, the host's DOCKER-INGRESS, the task's redirect.
    expect(first).toMatchObject({ namespaces: 2, gwLegs: 2, processes: 1, overlayOps: 2, meshRules: 5 });
    expect([...host.firewall.keys()]).toHaveLength(3);
    expect([...host.namespaces].sort()).toEqual(['ingress_sbox', 't-task00000001', 'unrelated-ns']);
    const calls = host.calls;
    const second = await rec.apply(planOf(snap), { resync: false });
    expect(reportChanges(second)).toBe(0);
    expect(host.calls).toBe(calls);
    // A resync checks every target again, and finds each as it was: a check is not a change, so an idle
    // node's periodic passes log nothing at info.
    const resync = await rec.apply(planOf(snap), { resync: true });
    expect(host.calls).toBeGreaterThan(calls);
    expect(resync.errors).toEqual([]);
    expect(reportChanges(resync)).toBe(0);
  });

  it('a one-backend change re-applies only the tables and rules it touches', async () => {
    const host = new FakeHost();
    const rec = reconciler(host);
    const snap = snapshotFixture();
    await rec.apply(planOf(snap), { resync: true });
    const calls = host.calls;
    const changed = { ...snap, tasks: snap.tasks.map((t) => (t.slot === 3 ? { ...t, state: 'failed' as const } : t)) };
    const r = await rec.apply(planOf(changed), { resync: false });
    // The task's east-west table, the sandbox's published-port table and the DNS view (tasks.web lost
    // an address); the host DNAT, the legs, the overlays and the processes are untouched.
    expect(host.calls - calls).toBe(3);
    expect(r).toMatchObject({ lbChanges: 3, dns: 1, gwLegs: 0, overlayOps: 0, meshRules: 0, processes: 0 });
    expect(JSON.parse(host.lb.get('/run/host-a/netns/ingress_sbox')!).services[0].backends).toHaveLength(2);
  });

  it('takes a task that left the plan away in the same pass: process, DNS, table, leg, namespace', async () => {
    const host = new FakeHost();
    const rec = reconciler(host);
    await rec.apply(planOf(), { resync: true });
    const gone = snapshotFixture();
    gone.tasks = gone.tasks.filter((t) => t.node !== 'host-a');
    const r = await rec.apply(planOf(gone), { resync: false });
    expect(r.errors).toEqual([]);
    expect(host.processes.size).toBe(0);
    expect([...host.namespaces].sort()).toEqual(['ingress_sbox', 'unrelated-ns']);
    expect([...host.legs.keys()]).toEqual(['mn-sbox']);
    expect(host.closedLbs).toEqual(['/run/host-a/netns/t-task00000001']);
  });

  it('the resync prunes only what meshnet owns and nothing wants', async () => {
    const host = new FakeHost();
    const rec = reconciler(host);
    await rec.apply(planOf(), { resync: true });
    host.namespaces.add('t-stale0000');
    host.namespaces.add('ov-oldnet');
    host.legs.set('mg0123456789a', '{}');
    host.legs.set('vethforeign', '{}');
    const quiet = await rec.apply(planOf(), { resync: false });
    expect(quiet.pruned).toBe(0);
    const r = await rec.apply(planOf(), { resync: true });
    expect(r.pruned).toBe(3);
    expect([...host.namespaces].sort()).toEqual(['ingress_sbox', 't-task00000001', 'unrelated-ns']);
    expect([...host.legs.keys()].sort()).toEqual([gwHostIfName('task00000001'), 'mn-sbox', 'vethforeign'].sort());
  });

  it('a fresh reconciler (an agent restart) adopts what the host already has without changing it', async () => {
    const host = new FakeHost();
    await reconciler(host).apply(planOf(), { resync: true });
    const before = JSON.stringify([...host.namespaces, ...host.legs, ...host.overlays, ...host.lb, ...host.taskRules, host.hostRules]);
    const r = await reconciler(host).apply(planOf(), { resync: true });
    expect({ ns: r.namespaces, gw: r.gwLegs, proc: r.processes, ov: r.overlayOps, lb: r.lbChanges, mesh: r.meshRules, pruned: r.pruned }).toEqual({ ns: 0, gw: 0, proc: 0, ov: 0, lb: 0, mesh: 0, pruned: 0 });
    expect(JSON.stringify([...host.namespaces, ...host.legs, ...host.overlays, ...host.lb, ...host.taskRules, host.hostRules])).toBe(before);
  });

  it('reads ahead the tables of tasks it has not applied yet, when there are several, and not on a pass that holds them', async () => {
    const snap = snapshotFixture();
    // A second task of web on host-a.
    const two = { ...snap, tasks: [...snap.tasks, { ...snap.tasks[0]!, id: 'task00000004', slot: 4, addresses: { appnet: { ip: '10.0.1.14', mac: '02:42:0a:00:01:0e' }, ingress: { ip: '10.255.0.14', mac: '02:42:0a:ff:00:0e' } } }] };
    const host = new FakeHost();
    const rec = reconciler(host);
    await rec.apply(planOf(two), { resync: true });
    expect(host.prefetched).toEqual([[`${settings.netnsDir}/t-task00000001`, `${settings.netnsDir}/t-task00000004`]]);
    // Every resolver answers (its sockets bound, the NAT an earlier agent left pointing at its port) before
    // the read-ahead, which took 1.3 s at 100 tasks; each NAT rule is checked after it, from what it read.
    expect(host.order).toEqual(['attach t-task00000001', 'attach t-task00000004', 'prefetch', 'nat t-task00000001', 'nat t-task00000004']);
    await rec.apply(planOf(two), { resync: false });
    expect(host.prefetched).toHaveLength(1);
    // A resolver that came back on another port (its worker restarted) gets its NAT rewritten by the next pass.
    host.order = [];
    host.dnsPort = 40001;
    const moved = await rec.apply(planOf(two), { resync: false });
    expect(moved).toMatchObject({ dns: 2, errors: [] });
    expect(host.order).toEqual(['nat t-task00000001', 'nat t-task00000004']);
    // One task alone is read by its own apply: nothing is gained by reading it ahead.
    const other = new FakeHost();
    await reconciler(other).apply(planOf(snap), { resync: true });
    expect(other.prefetched).toEqual([]);
  });

  it('a failing target is reported while the others converge, logged once, and healed on the next pass', async () => {
    const host = new FakeHost();
    host.failOverlay = 'appnet';
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
    const rec = reconciler(host, createLogger({ destination: sink }));
    const r = await rec.apply(planOf(), { resync: false });
    expect(r.errors).toEqual(['overlay appnet: kernel refused appnet']);
    expect(host.processes.has('task00000001')).toBe(true);
    expect(host.overlays.has('ingress')).toBe(true);
    for (let i = 0; i < 4; i++) await rec.apply(planOf(), { resync: false });
    expect(rec.status().find((s) => s.surface === 'overlay' && s.target === 'appnet')).toMatchObject({ error: 'kernel refused appnet' });
    host.failOverlay = null;
    const healed = await rec.apply(planOf(), { resync: false });
    expect(healed.errors).toEqual([]);
    expect(healed.overlayOps).toBe(1);
    expect(lines.filter((l) => l.includes('"reconcile.target_failed"'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"reconcile.target_recovered"') && l.includes('appnet'))).toHaveLength(1);
  });

  it('one namespace whose resolver cannot attach does not keep the others from being served', async () => {
    const host = new FakeHost();
    const snap = snapshotFixture();
    // A second local task: web.2 moves to host-a.
    snap.tasks[1] = { ...snap.tasks[1]!, node: 'host-a' };
    host.failDns = '/run/host-a/netns/t-task00000001';
    const r = await reconciler(host).apply(planOf(snap), { resync: true });
    expect(r.errors).toEqual(['dns /run/host-a/netns/t-task00000001: cannot serve DNS in /run/host-a/netns/t-task00000001']);
    expect([...host.dnsServed]).toEqual(['/run/host-a/netns/t-task00000002']);
  });

  it('a task that will not stop is reported, keeps its namespace, and the pass goes on', async () => {
    const host = new FakeHost();
    const rec = reconciler(host);
    await rec.apply(planOf(), { resync: true });
    host.unkillable.add('task00000001');
    host.processes.set('straytask00', '/run/host-a/netns/t-straytask00');
    const gone = snapshotFixture();
    gone.tasks = gone.tasks.filter((t) => t.node !== 'host-a');
    const r = await rec.apply(planOf(gone), { resync: false });
    expect(r.errors).toEqual([expect.stringContaining('TASK_UNKILLABLE')]);
    expect(host.processes.has('straytask00')).toBe(false);
    expect(host.namespaces.has('t-task00000001')).toBe(true);
  });
});

describe('NodeReconciler at debug level', () => {
  const logged = (level: 'debug' | 'info') => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk)) as Record<string, unknown>), done()) });
    return { lines, log: createLogger({ level, destination: sink }) };
  };

  it('explains each changed target in one line, and says nothing of the ones that held', async () => {
    const host = new FakeHost();
    const { lines, log } = logged('debug');
    const rec = reconciler(host, log);
    await rec.apply(planOf(), { resync: true });
    const first = lines.filter((l) => l['event'] === 'reconcile.target_changed');
    expect(first.length).toBeGreaterThan(0);
    expect(first.every((l) => l['reason'] === 'resync' && typeof l['surface'] === 'string' && typeof l['target'] === 'string')).toBe(true);
    lines.length = 0;
    // Task 3 (on host-c) goes: only the tables that balance to it change on host-a.
    const snap = snapshotFixture();
    snap.tasks = snap.tasks.filter((t) => t.slot !== 3);
    await rec.apply(planOf(snap), { resync: false });
    const changed = lines.filter((l) => l['event'] === 'reconcile.target_changed');
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.filter((l) => l['surface'] === 'lb')).toContainEqual(expect.objectContaining({ reason: 'changed', what: expect.stringMatching(/^services: changed web-/) }));
    expect(new Set(changed.map((l) => `${String(l['surface'])} ${String(l['target'])}`)).size).toBe(changed.length);
  });

  it('writes no explanation at info level', async () => {
    const { lines, log } = logged('info');
    const rec = reconciler(new FakeHost(), log);
    await rec.apply(planOf(), { resync: true });
    const snap = snapshotFixture();
    snap.tasks = snap.tasks.filter((t) => t.slot !== 3);
    await rec.apply(planOf(snap), { resync: false });
    expect(lines.filter((l) => String(l['event']).startsWith('reconcile.target_'))).toEqual([]);
  });
});

describe('resyncRound: what a numbered resync checks', () => {
  const taskTargets: [Surface, string][] = [
    ['namespace', 't-task00000001'],
    ['gwleg', 'mg0123456789a'],
    ['lb', '/run/meshnet/netns/t-task00000001'],
    ['taskrules', '/run/meshnet/netns/t-task00000002'],
    ['dns', '/run/meshnet/netns/t-task00000003'],
    ['sysctl', '/run/meshnet/netns/t-task00000001 net.ipv4.ip_forward'],
    ['process', 'task00000001'],
  ];
  const nodeTargets: [Surface, string][] = [
    ['namespace', 'ingress_sbox'],
    ['namespace', '(bridge)'],
    ['gwleg', 'mn-sbox'],
    ['lb', '/run/meshnet/netns/ingress_sbox'],
    ['hostrules', 'host'],
    ['sysctl', 'host net.ipv4.ip_forward'],
  ];

  it('tells per-task targets from node-wide ones', () => {
    for (const [s, t] of taskTargets) expect(isTaskTarget(s, t), `${s} ${t}`).toBe(true);
    for (const [s, t] of nodeTargets) expect(isTaskTarget(s, t), `${s} ${t}`).toBe(false);
  });

  it('checks node-wide targets on every round, and overlays (which read every endpoint) every OVERLAY_CHECK_ROUNDS', () => {
    for (let round = 1; round < 30; round++) for (const [s, t] of nodeTargets) expect(resyncRound(s, t, round)).toEqual({ check: true, deep: true });
    const overlayRounds = Array.from({ length: 30 }, (_, r) => r + 1).filter((r) => resyncRound('overlay', 'appnet', r).check);
    expect(OVERLAY_CHECK_ROUNDS).toBe(10);
    expect(overlayRounds).toEqual([10, 20, 30]);
    expect(isTaskTarget('overlay', 'appnet')).toBe(false);
  });

  it('checks each per-task target once every CHECK_ROUNDS rounds and re-reads it once every DEEP_ROUNDS', () => {
    const targets = Array.from({ length: 400 }, (_, i) => `/run/meshnet/netns/t-${i.toString(36).padStart(8, '0')}`);
    for (const t of targets) {
      const rounds = Array.from({ length: DEEP_ROUNDS }, (_, r) => resyncRound('lb', t, r + 1));
      expect(rounds.filter((x) => x.deep)).toHaveLength(1);
      // Checked in its own slot of every CHECK_ROUNDS window, plus the round it is re-read in.
      const checks = rounds.filter((x) => x.check).length;
      expect(checks).toBeGreaterThanOrEqual(DEEP_ROUNDS / CHECK_ROUNDS);
      expect(checks).toBeLessThanOrEqual(DEEP_ROUNDS / CHECK_ROUNDS + 1);
    }
    // Spread, not bunched: one round checks about one in CHECK_ROUNDS of them (10 of 400), never all at once.
    for (const round of [7, 8, 9]) {
      const perRound = targets.filter((t) => resyncRound('lb', t, round).check).length;
      expect(perRound).toBeGreaterThan(2);
      expect(perRound).toBeLessThan(30);
    }
  });

  it('a numbered resync re-checks node-wide targets, and a task target only in its own round', async () => {
    const host = new FakeHost();
    const adapters = host.adapters();
    const applied: string[] = [];
    const applyTask = adapters.mesh.applyTask;
    adapters.mesh.applyTask = async (rules, opts) => (applied.push(rules.netns), applyTask(rules, opts));
    const applyHost = adapters.mesh.applyHost;
    let hostApplies = 0;
    adapters.mesh.applyHost = async (plan, opts) => (hostApplies++, applyHost(plan, opts));
    const rec = new NodeReconciler(adapters, { resolvConf: 'nameserver 127.0.0.11\n', log: silentLogger() });
    const snap = snapshotFixture();
    await rec.apply(planOf(snap), { resync: true });
    const taskNs = planOf(snap).taskRules[0]!.netns;
    const rounds = Array.from({ length: CHECK_ROUNDS * 4 }, (_, r) => r + 1);
    const skip = rounds.find((r) => !resyncRound('taskrules', taskNs, r).check)!;
    const hit = rounds.find((r) => resyncRound('taskrules', taskNs, r).check)!;
    applied.length = 0;
    hostApplies = 0;
    await rec.apply(planOf(snap), { resync: true, deep: false, round: skip });
    expect(hostApplies).toBe(1);
    expect(applied).toEqual([]);
    await rec.apply(planOf(snap), { resync: true, deep: false, round: hit });
    expect(hostApplies).toBe(2);
    expect(applied).toEqual([taskNs]);
  });
});
