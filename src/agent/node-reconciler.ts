import { basename, join } from 'node:path';
import type { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { macForIpv4 } from '../sandbox/addresses.js';
import { setSysctl } from '../sandbox/sysctl.js';
import { OverlayDriver } from '../overlay/overlay-driver.js';
import { overlayNetnsName } from '../overlay/overlay-state.js';
import type { TaskSupervisor } from '../tasks/supervisor.js';
import type { DnsService } from '../dns/dns-service.js';
import type { NameView } from '../dns/name-view.js';
import { computeMeshPlan } from '../mesh/published-ports.js';
import type { MeshPlan } from '../mesh/mesh-plan.js';
import { applyHostPlan, applyTaskPlan, removeHostRules } from '../mesh/iptables-apply.js';
import type { HealthServers } from '../mesh/health-server.js';
import type { LbBackend, LbTable } from '../vip/lb-table.js';
import { GwBridge } from './gwbridge.js';
import { INGRESS_SBOX, type LocalTask, type NodeSettings, type NodeState } from './node-state.js';
import { logEvent } from './agent-log.js';

/** What one pass changed, step by step; all zeros means the kernel already matched. */
export interface PassReport {
  namespaces: number;
  overlayOps: number;
  gwLegs: number;
  processes: number;
  lbChanges: number;
  meshRules: number;
  dns: number;
  pruned: number;
  errors: string[];
}

/** The kernel-facing adapters the reconciler drives; real ones by default, fakes in tests. */
export interface KernelAdapters {
  overlay: Pick<OverlayDriver, 'apply'>;
  gw: Pick<GwBridge, 'ensureBridge' | 'legs' | 'bridgeAddressIn' | 'ensureLeg' | 'removeLeg'>;
  mesh: {
    applyHostPlan: (hostNetns: string | null, host: MeshPlan['host']) => Promise<{ changed: boolean }>;
    removeHostRules: (hostNetns: string | null) => Promise<{ changed: boolean }>;
    applyTaskPlan: (netns: string, task: MeshPlan['tasks'][number]) => Promise<{ changed: boolean }>;
    applyReturnRoute: (netns: string, route: NonNullable<MeshPlan['tasks'][number]['returnRoute']>) => Promise<void>;
  };
  sysctl: (netns: string, key: string, value: string | number) => void;
  close: () => void;
}

/** The adapters a reconciler drives, built once per agent. */
export interface ReconcilerDeps {
  settings: NodeSettings;
  hostNetns: string | null;
  netnsDir: Pick<NetnsDir, 'dir' | 'create' | 'exists' | 'list' | 'path' | 'delete'>;
  supervisor: Pick<TaskSupervisor, 'get' | 'ensureRunning' | 'reap'>;
  dns: Pick<DnsService, 'attach' | 'update' | 'detach'>;
  health: Pick<HealthServers, 'reconcile'>;
  /** Kernel adapters; omitted: the real ones for `hostNetns`. */
  kernel?: KernelAdapters;
  /** A load-balancing backend for one namespace (nftables or IPVS). */
  lbFor: (netns: string) => LbBackend;
  /** East-west VIP table for a task namespace. */
  vipTableFor: (task: LocalTask) => LbTable;
  resolvConf: string;
}

const TASK_NETNS = /^t-[a-z0-9]+$/;

/**
 * Applies a NodeState to the kernel and the process table, one adapter at a time. Each step is
 * idempotent and isolated: a failing step is logged and retried on the next pass while the others
 * still converge (level-triggered, as Cilium's reconciler).
 */
export class NodeReconciler {
  private readonly overlay: KernelAdapters['overlay'];
  private readonly gw: KernelAdapters['gw'];
  private readonly kernel: KernelAdapters;
  private readonly lbs = new Map<string, LbBackend>();
  private readonly dnsAttached = new Map<string, string>();
  private bridgeReady = false;
  private lastConflicts = '';
  /** Steps failing now, so a persistent failure is logged when it starts, changes or every 30 s, not every pass. */
  private readonly failing = new Map<string, { message: string; since: number; loggedAt: number }>();
  /** Mesh plan of the last pass, for inspect and tests. */
  lastMeshPlan: MeshPlan | null = null;

  constructor(private readonly deps: ReconcilerDeps) {
    this.kernel = deps.kernel ?? realKernelAdapters(deps);
    this.overlay = this.kernel.overlay;
    this.gw = this.kernel.gw;
  }

  /** Current gwbridge address of each local task, read from the kernel (so restarts keep them). */
  async currentGwAddresses(tasks: readonly { id: string; sandbox: string }[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const t of tasks) {
      if (!this.deps.netnsDir.exists(basename(t.sandbox))) continue;
      const ip = await this.gw.bridgeAddressIn(t.sandbox).catch(() => undefined);
      if (ip) out[t.id] = ip;
    }
    return out;
  }

  /** One full pass: make everything match `state`. */
  async apply(state: NodeState, opts: { prune: boolean }): Promise<PassReport> {
    const r: PassReport = { namespaces: 0, overlayOps: 0, gwLegs: 0, processes: 0, lbChanges: 0, meshRules: 0, dns: 0, pruned: 0, errors: [] };
    const step = async (name: string, fn: () => Promise<void>) => {
      try {
        await fn();
        if (this.failing.delete(name)) logEvent('info', 'reconcile.step_recovered', { step: name });
      } catch (err) {
        r.errors.push(`${name}: ${(err as Error).message}`);
        const message = (err as Error).message;
        // Passes run every second: say a failure when it starts or changes, then every 30 s while it lasts.
        const seen = this.failing.get(name);
        if (!seen || seen.message !== message || Date.now() - seen.loggedAt >= 30_000) {
          logEvent('error', 'reconcile.step_failed', { step: name, error: message, ...(seen?.message === message ? { since: new Date(seen.since).toISOString() } : {}) });
          this.failing.set(name, { message, since: seen?.message === message ? seen.since : Date.now(), loggedAt: Date.now() });
        }
        return;
      }
    };
    const dir = this.deps.netnsDir;
    const sboxPath = join(dir.dir, INGRESS_SBOX);

    await step('gwbridge', async () => {
      if (!this.bridgeReady) {
        await this.gw.ensureBridge();
        this.bridgeReady = true;
      }
    });

    // Namespaces first: overlays and legs attach into them.
    await step('namespaces', async () => {
      const wanted = state.tasks.filter((t) => !t.external).map((t) => basename(t.sandbox));
      if (state.ingress) wanted.push(INGRESS_SBOX);
      for (const name of wanted) {
        if (!dir.exists(name)) {
          dir.create(name);
          r.namespaces++;
        }
      }
    });

    await step('ingress_sbox', async () => {
      if (!state.ingress) return;
      const g = this.deps.settings.gwbridge;
      if (await this.gw.ensureLeg({ sandbox: sboxPath, ifname: 'eth1', hostIf: 'mn-sbox', ip: g.sboxAddress, mac: macForIpv4(g.sboxAddress), defaultRoute: true })) r.gwLegs++;
      this.kernel.sysctl(sboxPath, 'net.ipv4.ip_forward', 1);
    });

    for (const t of state.tasks) {
      await step(`gwleg ${t.name}`, async () => {
        if (await this.gw.ensureLeg({ sandbox: t.sandbox, ifname: t.gw.ifname, hostIf: t.gw.hostIf, ip: t.gw.ip, mac: t.gw.mac, defaultRoute: true })) r.gwLegs++;
      });
    }

    for (const input of state.overlays) {
      await step(`overlay ${input.network.name}`, async () => {
        r.overlayOps += (await this.overlay.apply(input)).ops.length;
      });
    }

    // Load balancing before processes start, so a task's first connection to a VIP already works.
    for (const t of state.tasks) {
      await step(`vip ${t.name}`, async () => {
        r.lbChanges += (await this.lbOf(t.sandbox).apply(this.deps.vipTableFor(t))).changes;
      });
    }

    await step('mesh', async () => {
      if (!state.mesh) {
        this.lastMeshPlan = null;
        r.meshRules += (await this.kernel.mesh.removeHostRules(this.deps.hostNetns)).changed ? 1 : 0;
        return;
      }
      const plan = computeMeshPlan(state.mesh);
      this.lastMeshPlan = plan;
      // Said when the set of conflicts changes, not on every pass.
      const conflicts = plan.conflicts.map((c) => c.message).sort().join('\n');
      if (conflicts !== this.lastConflicts) {
        for (const c of plan.conflicts) logEvent('warn', 'mesh.conflict', { code: c.code, error: c.message });
        this.lastConflicts = conflicts;
      }
      for (const sc of plan.sbox.sysctls) this.kernel.sysctl(sboxPath, sc.key, sc.value);
      r.lbChanges += (await this.lbOf(sboxPath).apply({ services: plan.sbox.virtualServices })).changes;
      const hostResult = await this.kernel.mesh.applyHostPlan(this.deps.hostNetns, plan.host);
      if (hostResult.changed) r.meshRules++;
      for (const tp of plan.tasks) {
        const local = state.tasks.find((t) => t.record.id === tp.taskId);
        if (!local) continue;
        if ((await this.kernel.mesh.applyTaskPlan(local.sandbox, tp)).changed) r.meshRules++;
        if (tp.returnRoute) await this.kernel.mesh.applyReturnRoute(local.sandbox, tp.returnRoute);
      }
      await this.deps.health.reconcile(plan.health);
    });

    for (const t of state.tasks) {
      if (t.draining || t.external) continue;
      await step(`process ${t.name}`, async () => {
        const before = this.deps.supervisor.get(t.record.id);
        const env: Record<string, string> = {
          ...(t.service.env ?? {}),
          MESHNET_TASK_ID: t.record.id,
          MESHNET_TASK_NAME: t.name,
          MESHNET_SERVICE: t.service.name,
          MESHNET_NODE: this.deps.settings.nodeId,
        };
        await this.deps.supervisor.ensureRunning({ taskId: t.record.id, netnsPath: t.sandbox, command: t.service.command, env, resolvConf: this.deps.resolvConf, hostname: `${t.service.name}-${t.record.slot}`.slice(0, 63) });
        if (!before) r.processes++;
      });
    }

    await step('dns', async () => {
      const views = new Map<string, NameView>(state.dnsViews.map((v) => [v.sandbox, v.view]));
      for (const [sandbox, view] of views) {
        const key = JSON.stringify(view);
        const had = this.dnsAttached.get(sandbox);
        if (had === key) continue;
        if (had === undefined) await this.deps.dns.attach(sandbox, view);
        else this.deps.dns.update(sandbox, view);
        this.dnsAttached.set(sandbox, key);
        r.dns++;
      }
      for (const sandbox of [...this.dnsAttached.keys()]) {
        if (!views.has(sandbox)) {
          await this.deps.dns.detach(sandbox);
          this.dnsAttached.delete(sandbox);
          r.dns++;
        }
      }
    });

    // Processes of tasks that left the state (a slot claimed by another node) stop on every pass;
    // kernel objects are pruned on the periodic full pass.
    await step('reap', async () => {
      r.pruned += (await this.deps.supervisor.reap(new Set(state.tasks.filter((t) => !t.external).map((t) => t.record.id)), { graceMs: 5000 })).length;
    });
    if (opts.prune) await step('prune', async () => this.prune(state, r));
    return r;
  }

  /** Removes what meshnet made on this node but the state no longer wants: processes, legs, namespaces, overlays. */
  private async prune(state: NodeState, r: PassReport): Promise<void> {
    const keepLegs = new Set(state.tasks.map((t) => t.gw.hostIf));
    if (state.ingress) keepLegs.add('mn-sbox');
    for (const leg of await this.gw.legs()) {
      if ((leg.startsWith('mg') || leg === 'mn-sbox') && !keepLegs.has(leg)) {
        await this.gw.removeLeg(leg);
        r.pruned++;
      }
    }
    const keepNs = new Set(state.tasks.map((t) => basename(t.sandbox)));
    if (state.ingress) keepNs.add(INGRESS_SBOX);
    for (const o of state.overlays) keepNs.add(overlayNetnsName(o.network.name));
    for (const name of this.deps.netnsDir.list()) {
      const ours = TASK_NETNS.test(name) || name.startsWith('ov-') || name === INGRESS_SBOX;
      if (!ours || keepNs.has(name)) continue;
      const path = this.deps.netnsDir.path(name);
      if (this.dnsAttached.has(path)) {
        await this.deps.dns.detach(path);
        this.dnsAttached.delete(path);
      }
      this.lbs.delete(path);
      this.deps.netnsDir.delete(name);
      r.pruned++;
    }
  }

  private lbOf(netns: string): LbBackend {
    let lb = this.lbs.get(netns);
    if (!lb) {
      lb = this.deps.lbFor(netns);
      this.lbs.set(netns, lb);
    }
    return lb;
  }

  /** Releases sockets held by the reconciler. */
  close(): void {
    this.kernel.close();
  }
}

/** The real adapters: rtnetlink for the host and sandboxes, iptables-restore, /proc/sys. */
function realKernelAdapters(deps: ReconcilerDeps): KernelAdapters {
  const host = Rtnl.open(deps.hostNetns, { allowHostNamespace: true });
  return {
    overlay: new OverlayDriver({ netnsDir: deps.netnsDir, hostNetns: deps.hostNetns, allowHostNamespace: true }),
    gw: new GwBridge(host, deps.hostNetns, deps.settings.gwbridge),
    mesh: {
      applyHostPlan: (netns, plan) => applyHostPlan(netns, plan),
      removeHostRules: (netns) => removeHostRules(netns),
      applyTaskPlan: (netns, task) => applyTaskPlan(netns, task),
      applyReturnRoute: async (sandbox, rr) => {
        const sb = Rtnl.open(sandbox);
        try {
          for (const route of rr.routes) {
            const spec: Parameters<Rtnl['replaceRoute']>[0] = { dst: route.to === 'default' ? 'default' : route.to, dev: rr.device, table: rr.table };
            if (route.via) spec.gateway = route.via;
            await sb.replaceRoute(spec);
          }
          await sb.replaceRule({ from: rr.from, table: rr.table, priority: rr.priority });
        } finally {
          sb.close();
        }
      },
    },
    sysctl: (netns, key, value) => setSysctl(netns, key, value),
    close: () => host.close(),
  };
}
