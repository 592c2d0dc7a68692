import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, type OpenStoreOptions } from '../store/open-store.js';
import type { KvStore, WatchHandle } from '../store/kv-store.js';
import { attachedNetworks, Cluster, type NodeRegistration, type ClusterSnapshot } from '../model/cluster.js';
import { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { TaskSupervisor, type TaskStateEvent } from '../tasks/supervisor.js';
import { DnsService } from '../dns/dns-service.js';
import { taskResolvConf } from '../dns/resolv-conf.js';
import { HealthServers } from '../mesh/health-server.js';
import type { LbBackend } from '../vip/lb-table.js';
import { intToIpv4, ipv4ToInt, parseCidr } from '../sandbox/addresses.js';
import type { AgentConfig } from './agent-config.js';
import { logEvent } from './agent-log.js';
import { claimIngressEndpoint, listIngressEndpoints } from './ingress-endpoint.js';
import { desiredNodeState, type LocalTask, type NodeSettings, type NodeState } from './node-state.js';
import { NodeReconciler, type PassReport } from './node-reconciler.js';
import { placementActions } from './placement-actions.js';
import { taskReady } from './task-readiness.js';
import { hostBoundPorts } from './host-ports.js';
import { createLbBackend, selectLbBackend } from './lb-backend-choice.js';
import { eastWestTable } from './east-west-table.js';
import { lbServiceId } from '../vip/desired-table.js';
import { INGRESS_NETWORK } from '../model/ipam.js';
import { summarizeTables, writeNodeStatus, type NodeStatus } from './node-status.js';
import { ingressServiceId } from '../mesh/published-ports.js';

/** One agent per host: registers the node, watches the store, and reconciles the host to it. */
export class Agent {
  private store!: KvStore;
  private cluster!: Cluster;
  private registration!: NodeRegistration;
  private supervisor!: TaskSupervisor;
  private dns!: DnsService;
  private health!: HealthServers;
  private reconciler!: NodeReconciler;
  private watch: WatchHandle | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopping = false;
  private lastFull = 0;
  private readonly settings: NodeSettings;
  private lbKind: 'nftables' | 'ipvs' = 'nftables';
  private lastState: NodeState | null = null;
  private lastSnapshot: ClusterSnapshot | null = null;
  private lastStatus = '';
  /** Reports of completed passes, newest last (bounded), for tests and `inspect`. */
  readonly passes: PassReport[] = [];

  constructor(
    private readonly config: AgentConfig,
    private readonly storeOptions: OpenStoreOptions = {},
  ) {
    const { ip: base, prefix } = parseCidr(config.gwbridgeSubnet);
    if (prefix > 29) throw new Error(`--gwbridge-subnet ${config.gwbridgeSubnet} is too small: use /29 or larger`);
    this.settings = {
      nodeId: config.nodeName,
      netnsDir: config.netnsDir,
      underlayIp: config.advertiseAddr,
      underlayMtu: 1500,
      gwbridge: {
        name: config.gwbridgeName,
        subnet: config.gwbridgeSubnet,
        gateway: intToIpv4(ipv4ToInt(base) + 1),
        sboxAddress: intToIpv4(ipv4ToInt(base) + 2),
      },
    };
  }

  /** Connects, registers, adopts what the kernel has, and starts reconciling. */
  async start(): Promise<void> {
    // Start libuv's threadpool here, before any worker enters a task namespace (machine.md trap).
    await import('node:fs/promises').then((fs) => fs.stat('/'));
    this.settings.underlayMtu = await this.underlayMtu();
    this.store = await openStore(this.config.store, this.storeOptions);
    this.cluster = new Cluster(this.store, { sandboxDir: this.config.netnsDir });
    this.registration = await this.cluster.registerNode(
      { id: this.config.nodeName, name: this.config.nodeName, underlayIp: this.config.advertiseAddr },
      { ttlSeconds: this.config.leaseTtlSeconds, onKeepAliveError: (err) => logEvent('warn', 'node.keepalive_failed', { error: err.message }) },
    );
    this.lbKind = await selectLbBackend(this.config.lbBackend, this.config.hostNetns);
    const hostResolv = safeRead('/etc/resolv.conf');
    const resolv = taskResolvConf(hostResolv);
    const upstreams = this.config.dnsUpstreams.length > 0 ? this.config.dnsUpstreams : resolv.upstreams;
    this.supervisor = new TaskSupervisor({ stateDir: join(this.config.stateDir, 'tasks'), onStateChange: (e) => void this.onTaskEvent(e) });
    const adopted = await this.supervisor.adoptOrphans();
    this.dns = new DnsService({ upstreams });
    this.health = new HealthServers(this.config.hostNetns);
    const netnsDir = new NetnsDir(this.config.netnsDir);
    this.reconciler = new NodeReconciler({
      settings: this.settings,
      hostNetns: this.config.hostNetns,
      netnsDir,
      supervisor: this.supervisor,
      dns: this.dns,
      health: this.health,
      lbFor: (netns) => this.lbFor(netns),
      vipTableFor: (t: LocalTask) => eastWestTable(this.lastSnapshot!, t, this.config.drainSeconds, Date.now()),
      resolvConf: resolv.taskResolvConf,
    });
    logEvent('info', 'agent.started', { node: this.config.nodeName, advertiseAddr: this.config.advertiseAddr, lbBackend: this.lbKind, adoptedTasks: adopted.length, store: this.config.store.replace(/\/\/[^@]*@/, '//***@') });
    await this.startWatch();
    this.timer = setInterval(() => this.kick(), 1000);
    this.kick();
  }

  /**
   * Watches the store for changes. Events only trigger passes (the 1 s timer heals anything a watch
   * misses), so a failed watch is logged, answered with a pass, and set up again a second later.
   */
  private async startWatch(): Promise<void> {
    if (this.stopping) return;
    this.watch = await this.cluster.watch(() => this.kick(), {
      onError: (err: Error) => {
        logEvent('warn', 'store.watch_failed', { error: err.message, retryInMs: 1000 });
        this.watch?.close();
        this.watch = null;
        this.kick();
        setTimeout(() => void this.startWatch().catch((e: Error) => logEvent('error', 'store.watch_restart_failed', { error: e.message })), 1000).unref();
      },
    });
  }

  /** The backend kind this agent chose. */
  get lbBackendKind(): 'nftables' | 'ipvs' {
    return this.lbKind;
  }

  /** Asks for a pass; passes never overlap, and a request during a pass runs one more after it. */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        logEvent('error', 'reconcile.failed', { error: (err as Error).message });
      }
    } while (this.again && !this.stopping);
  }

  /** One reconcile pass: store first (claims, drains), then the kernel and processes. */
  private async pass(): Promise<void> {
    const started = Date.now();
    let snapshot = await this.cluster.snapshot();
    const me = this.config.nodeName;
    const changedStore = await this.applyPlacement(snapshot);
    const ingress = snapshot.networks.find((n) => n.ingress);
    let endpoints = await listIngressEndpoints(this.store);
    if (ingress && !endpoints.some((e) => e.node === me)) {
      await claimIngressEndpoint(this.store, me, this.registration.lease(), ingress);
      endpoints = await listIngressEndpoints(this.store);
    }
    if (changedStore) snapshot = await this.cluster.snapshot();
    this.lastSnapshot = snapshot;
    const mine = snapshot.tasks.filter((t) => t.node === me);
    const currentGw = await this.reconciler.currentGwAddresses(mine);
    // An attached namespace that its runtime already removed must not stall the rest of the node.
    const vanished = new Set(mine.filter((t) => t.external && !existsSync(t.sandbox)).map((t) => t.id));
    for (const id of vanished) logEvent('warn', 'task.external_netns_missing', { task: id, hint: 'meshnet task detach it, or recreate the namespace' });
    const view = vanished.size ? { ...snapshot, tasks: snapshot.tasks.filter((t) => !vanished.has(t.id)) } : snapshot;
    // Our own health servers hold their ports on the host; anything else bound there is someone else's.
    const ours = new Set(snapshot.services.flatMap((sv) => (sv.healthPort ? [`tcp/${sv.healthPort}`] : [])));
    const boundHostPorts = hostBoundPorts(this.config.hostNetns, ours);
    const state = desiredNodeState({ snapshot: view, settings: this.settings, ingressEndpoints: endpoints, currentGw, boundHostPorts });
    this.lastState = state;
    const full = Date.now() - this.lastFull >= this.config.resyncSeconds * 1000;
    const report = await this.reconciler.apply(state, { prune: full });
    if (full) this.lastFull = Date.now();
    await this.reportTaskStates(state);
    await this.publishStatus(snapshot, state).catch((err: Error) => logEvent('warn', 'node.status_failed', { error: err.message }));
    this.passes.push(report);
    if (this.passes.length > 50) this.passes.shift();
    const changes = report.namespaces + report.overlayOps + report.gwLegs + report.processes + report.lbChanges + report.meshRules + report.dns + report.pruned;
    // A pass is logged when it changed something; failures are logged by the step that failed.
    if (changes > 0 || changedStore) {
      logEvent(report.errors.length ? 'warn' : 'info', 'reconcile.pass', { revision: snapshot.revision, full, ms: Date.now() - started, ...report });
    }
    if (changedStore) this.again = true;
  }

  /** Claims, drains and removes tasks in the store; true when it wrote anything. */
  private async applyPlacement(snapshot: ClusterSnapshot): Promise<boolean> {
    const actions = placementActions(snapshot, this.config.nodeName, new Date(), this.config.drainSeconds);
    let wrote = false;
    for (const c of actions.claim) {
      try {
        const task = await this.cluster.claimTask(c.service, c.slot, this.config.nodeName);
        logEvent('info', 'task.claimed', { service: c.service, slot: c.slot, task: task.id });
        wrote = true;
      } catch (err) {
        logEvent('warn', 'task.claim_failed', { service: c.service, slot: c.slot, error: (err as Error).message });
      }
    }
    for (const t of actions.drain) {
      await this.cluster.updateTaskState(t.service, t.slot, t.id, { desiredState: 'shutdown', message: `draining for ${this.config.drainSeconds}s` }).catch(() => undefined);
      logEvent('info', 'task.draining', { service: t.service, slot: t.slot, task: t.id });
      wrote = true;
    }
    for (const t of actions.remove) {
      await this.supervisor.stop(t.id, { graceMs: 5000 });
      await this.cluster.removeTask(t.service, t.slot, t.id);
      logEvent('info', 'task.removed', { service: t.service, slot: t.slot, task: t.id });
      wrote = true;
    }
    return wrote;
  }

  /** Writes process states to the store where they differ from what it says. */
  private async reportTaskStates(state: NodeState): Promise<void> {
    for (const t of state.tasks) {
      if (t.external) continue;
      const info = this.supervisor.get(t.record.id);
      if (!info) continue;
      const up = info.state === 'running';
      // Running means ready: listening on the ports it serves, so no traffic reaches a process still starting.
      const ready = up && taskReady(t.sandbox, t.service.ports);
      const observed = ready ? 'running' : up || info.state === 'starting' || info.state === 'exited' ? 'starting' : info.state === 'failed' ? 'failed' : undefined;
      if (!observed || (observed === t.record.state && info.restarts === t.record.restarts)) continue;
      await this.cluster
        .updateTaskState(t.record.service, t.record.slot, t.record.id, { state: observed, restarts: info.restarts })
        .catch((err: Error) => logEvent('warn', 'task.state_report_failed', { task: t.record.id, error: err.message }));
    }
  }

  /** Publishes what this node programmed (for `meshnet service inspect`) when it changed. */
  private async publishStatus(snapshot: ClusterSnapshot, state: NodeState): Promise<void> {
    const owner = new Map<string, string>();
    for (const svc of snapshot.services) {
      for (const net of attachedNetworks(svc).filter((n) => n !== INGRESS_NETWORK)) {
        for (const protocol of ['tcp', 'udp'] as const) owner.set(lbServiceId(svc.name, svc.name, net, protocol, 0), svc.name);
      }
      for (const p of svc.ports) owner.set(ingressServiceId(p.protocol, p.published), svc.name);
    }
    const tables = state.tasks.map((t) => eastWestTable(snapshot, t, this.config.drainSeconds, Date.now()));
    const plan = this.reconciler.lastMeshPlan;
    if (plan) tables.push({ services: plan.sbox.virtualServices });
    const services = summarizeTables(tables, (id) => owner.get(id));
    const key = JSON.stringify([this.lbKind, services]);
    if (key === this.lastStatus) return;
    const status: NodeStatus = { node: this.config.nodeName, lbBackend: this.lbKind, updatedAt: new Date().toISOString(), services };
    await writeNodeStatus(this.store, status, this.registration.lease());
    this.lastStatus = key;
  }

  private onTaskEvent(e: TaskStateEvent): void {
    logEvent(e.state === 'failed' ? 'warn' : 'info', 'task.process', { task: e.taskId, state: e.state, pid: e.pid, exitCode: e.exitCode, restarts: e.restarts, message: e.message });
    this.kick();
  }

  private lbFor(netns: string): LbBackend {
    return createLbBackend(this.lbKind, netns);
  }

  private async underlayMtu(): Promise<number> {
    const r = Rtnl.open(this.config.hostNetns);
    try {
      const addrs = await r.addresses();
      const own = addrs.find((a) => a.cidr.split('/')[0] === this.config.advertiseAddr);
      if (!own) throw new Error(`--advertise-addr ${this.config.advertiseAddr} is not an address of this host: give one of ${addrs.map((a) => a.cidr).join(', ')}`);
      return (await r.requireLink(own.link)).mtu;
    } finally {
      r.close();
    }
  }

  /** The last computed node state (for inspect). */
  get state(): NodeState | null {
    return this.lastState;
  }

  /** Stops reconciling and leaves the kernel and task processes as they are (a restart adopts them). */
  async stop(opts: { deregister?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.watch?.close();
    await this.running;
    if (opts.deregister) await this.registration.close();
    else this.registration?.stop();
    await this.health?.close();
    this.supervisor?.close();
    await this.dns?.close();
    this.reconciler?.close();
    await this.store?.close();
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

