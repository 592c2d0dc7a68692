import { describe, expect, it, vi } from 'vitest';
import { NodeReconciler, type KernelAdapters, type ReconcilerDeps } from './node-reconciler.js';
import { desiredNodeState, type NodeSettings, type NodeState } from './node-state.js';
import { snapshotFixture } from './agent-fixtures.test-data.js';
import type { ApplyReport, LbBackend, LbTable } from '../vip/lb-table.js';
import type { OverlayInput } from '../overlay/overlay-spec.js';

/** A pretend host: what the fake adapters "programmed", kept across reconcilers like a real kernel. */
class FakeHost {
  namespaces = new Set<string>(['unrelated-ns']);
  overlays = new Map<string, string>();
  legs = new Map<string, string>();
  bridge = false;
  hostRules = '';
  taskRules = new Map<string, string>();
  lb = new Map<string, string>();
  processes = new Set<string>();
  failOverlay: string | null = null;
  writes = 0;

  kernel(): KernelAdapters {
    const changed = (m: Map<string, string>, k: string, v: unknown) => {
      const s = JSON.stringify(v);
      if (m.get(k) === s) return false;
      m.set(k, s);
      this.writes++;
      return true;
    };
    return {
      overlay: {
        apply: async (input: OverlayInput) => {
          if (this.failOverlay === input.network.name) throw new Error(`kernel refused ${input.network.name}`);
          return { ops: changed(this.overlays, input.network.name, input) ? [{ op: 'createBridge' }] : [], netns: `ov-${input.network.name}` } as never;
        },
      },
      gw: {
        ensureBridge: async () => {
          this.bridge = true;
        },
        legs: async () => [...this.legs.keys()],
        bridgeAddressIn: async () => undefined,
        ensureLeg: async (leg) => changed(this.legs, leg.hostIf, leg),
        removeLeg: async (hostIf) => {
          this.legs.delete(hostIf);
        },
      },
      mesh: {
        applyHostPlan: async (_n, plan) => ({ changed: JSON.stringify(plan) !== this.hostRules && ((this.hostRules = JSON.stringify(plan)), true) }),
        removeHostRules: async () => ({ changed: this.hostRules !== '' && ((this.hostRules = ''), true) }),
        applyTaskPlan: async (netns, task) => ({ changed: changed(this.taskRules, netns, task.redirects) }),
        applyReturnRoute: async () => undefined,
      },
      sysctl: () => undefined,
      close: () => undefined,
    };
  }

  deps(settings: NodeSettings, kernel = this.kernel()): ReconcilerDeps {
    const dir = settings.netnsDir;
    const lbFor = (netns: string): LbBackend => ({
      kind: 'nftables',
      apply: async (table: LbTable): Promise<ApplyReport> => {
        const s = JSON.stringify(table);
        const changes = this.lb.get(netns) === s ? 0 : table.services.length;
        this.lb.set(netns, s);
        return { changes, durationMs: 0 };
      },
      read: async () => JSON.parse(this.lb.get(netns) ?? '{"services":[]}') as LbTable,
      destroy: async () => void this.lb.delete(netns),
    });
    return {
      settings,
      hostNetns: '/fake/host',
      netnsDir: {
        dir,
        create: (n: string) => (this.namespaces.add(n), `${dir}/${n}`),
        exists: (n: string) => this.namespaces.has(n),
        list: () => [...this.namespaces].sort(),
        path: (n: string) => `${dir}/${n}`,
        delete: (n: string) => void this.namespaces.delete(n),
      },
      supervisor: {
        get: (id: string) => (this.processes.has(id) ? ({ taskId: id, state: 'running' } as never) : undefined),
        ensureRunning: async (spec) => (this.processes.add(spec.taskId), { taskId: spec.taskId } as never),
        reap: async (keep: Iterable<string>) => {
          const k = new Set(keep);
          const gone = [...this.processes].filter((id) => !k.has(id));
          for (const id of gone) this.processes.delete(id);
          return gone;
        },
      },
      dns: { attach: async () => undefined, update: () => undefined, detach: async () => undefined },
      health: { reconcile: async () => undefined },
      kernel,
      lbFor,
      vipTableFor: () => ({ services: [] }),
      resolvConf: 'nameserver 127.0.0.11\n',
    };
  }
}

const settings: NodeSettings = {
  nodeId: 'host-a',
  netnsDir: '/run/host-a/netns',
  underlayIp: '192.0.2.1',
  underlayMtu: 1500,
  gwbridge: { name: 'meshnet_gwbr', subnet: '172.18.0.0/16', gateway: '172.18.0.1', sboxAddress: '172.18.0.2' },
};
const endpoints = [
  { node: 'host-a', ip: '10.255.0.3', mac: '02:42:0a:ff:00:03' },
  { node: 'host-b', ip: '10.255.0.4', mac: '02:42:0a:ff:00:04' },
];
const stateOf = (snap = snapshotFixture()): NodeState => desiredNodeState({ snapshot: snap, settings, ingressEndpoints: endpoints, currentGw: {} });
const changes = (r: Awaited<ReturnType<NodeReconciler['apply']>>) => r.namespaces + r.overlayOps + r.gwLegs + r.processes + r.lbChanges + r.meshRules + r.pruned;

describe('NodeReconciler with fake adapters', () => {
  it('builds everything on an empty host, and a second pass of the same state changes nothing', async () => {
    const host = new FakeHost();
    const rec = new NodeReconciler(host.deps(settings));
    const first = await rec.apply(stateOf(), { prune: true });
    expect(first.errors).toEqual([]);
    expect(first).toMatchObject({ namespaces: 2, gwLegs: 2, processes: 1, overlayOps: 2, meshRules: 2 });
    expect([...host.namespaces].sort()).toEqual(['ingress_sbox', 't-task00000001', 'unrelated-ns']);
    const writes = host.writes;
    const second = await rec.apply(stateOf(), { prune: true });
    expect(changes(second)).toBe(0);
    expect(host.writes).toBe(writes);
  });

  it('prunes only what meshnet owns and the state no longer wants', async () => {
    const host = new FakeHost();
    const rec = new NodeReconciler(host.deps(settings));
    await rec.apply(stateOf(), { prune: true });
    host.namespaces.add('t-stale0000');
    host.namespaces.add('ov-oldnet');
    host.legs.set('mgdeadbeef000', '{}');
    host.processes.add('stale-task');
    const gone = snapshotFixture();
    gone.tasks = gone.tasks.filter((t) => t.node !== 'host-a');
    const r = await rec.apply(stateOf(gone), { prune: true });
    expect(host.processes.size).toBe(0);
    expect([...host.namespaces].sort()).toEqual(['ingress_sbox', 'unrelated-ns']);
    expect([...host.legs.keys()]).toEqual(['mn-sbox']);
    expect(r.pruned).toBe(7); // processes: the task and the stray one; legs: the task's and the stray one; namespaces: t-task, t-stale, ov-oldnet
  });

  it('a fresh reconciler (an agent restart) adopts what the host already has without recreating it', async () => {
    const host = new FakeHost();
    await new NodeReconciler(host.deps(settings)).apply(stateOf(), { prune: true });
    const writes = host.writes;
    const restarted = new NodeReconciler(host.deps(settings));
    const r = await restarted.apply(stateOf(), { prune: true });
    expect({ ns: r.namespaces, gw: r.gwLegs, proc: r.processes, ov: r.overlayOps, mesh: r.meshRules, pruned: r.pruned }).toEqual({ ns: 0, gw: 0, proc: 0, ov: 0, mesh: 0, pruned: 0 });
    expect(host.writes).toBe(writes);
  });

  it('a failing step is reported while the other steps still converge, and the next pass heals it', async () => {
    const host = new FakeHost();
    host.failOverlay = 'appnet';
    const rec = new NodeReconciler(host.deps(settings));
    const r = await rec.apply(stateOf(), { prune: false });
    expect(r.errors).toEqual(['overlay appnet: kernel refused appnet']);
    expect(host.processes.has('task00000001')).toBe(true);
    expect(host.overlays.has('ingress')).toBe(true);
    host.failOverlay = null;
    const healed = await rec.apply(stateOf(), { prune: false });
    expect(healed.errors).toEqual([]);
    expect(healed.overlayOps).toBe(1);
  });

  it('logs a persistent failure once, not on every pass, and logs its recovery', async () => {
    const host = new FakeHost();
    host.failOverlay = 'appnet';
    const rec = new NodeReconciler(host.deps(settings));
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    try {
      for (let i = 0; i < 5; i++) await rec.apply(stateOf(), { prune: false });
      host.failOverlay = null;
      await rec.apply(stateOf(), { prune: false });
    } finally {
      spy.mockRestore();
    }
    expect(lines.filter((l) => l.includes('"reconcile.step_failed"'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"reconcile.step_recovered"') && l.includes('overlay appnet'))).toHaveLength(1);
  });
});
