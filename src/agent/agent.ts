import { trimMallocHeap } from './glibc-malloc.js';
import { ResolverSocketKeeper } from '../dns/socket-keeper.js';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, type OpenStoreOptions } from '../store/open-store.js';
import { retryTransient } from './start-retry.js';
import type { KvStore } from '../store/kv-store.js';
import { Cluster, type NodeRegistration, type ClusterSnapshot } from '../model/cluster.js';
import { ClusterMirror } from '../model/cluster-mirror.js';
import { NetnsDir } from '../sandbox/netns.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { checkUnderlayFamily } from '../overlay/underlay-address.js';
import { homeNetnsIdentity } from '../sandbox/netns-switch.js';
import { processesSpawned } from '../sandbox/exec.js';
import { TaskSupervisor, type TaskStateEvent } from '../tasks/supervisor.js';
import { DnsService } from '../dns/dns-service.js';
import { taskResolvConf } from '../dns/resolv-conf.js';
import { HealthServers } from '../mesh/health-server.js';
import { intToIpv4, ipv4ToInt, parseCidr } from '../sandbox/addresses.js';
import type { Logger } from '../log/logger.js';
import type { AgentConfig } from './agent-config.js';
import { claimIngressEndpoint, INGRESS_ENDPOINTS, parseIngressEndpoints, type IngressEndpoint } from './ingress-endpoint.js';
import { desiredNode, PlanMemo, taskNetnsName, type NodePlan, type NodeSettings } from './node-plan.js';
import { NodeReconciler, reportChanges, resyncRound, type PassReport } from './node-reconciler.js';
import { realNodeAdapters } from './node-adapters.js';
import { placementActions } from './placement-actions.js';
import { startSuccessors, writeRolloutSteps } from './rollout-writer.js';
import { taskReady, taskReport } from './task-readiness.js';
import { healthDiffers } from '../tasks/health-check.js';
import { selectLbBackend } from './lb-backend-choice.js';
import { publishableStatus, writeNodeStatus } from './node-status.js';
import { readLeaseFile, writeLeaseFile } from './lease-file.js';
import { chooseGwbridgeSubnet } from '../mesh/gwbridge-subnet.js';
import { checkDockerIngressTakeover } from '../mesh/docker-ingress-takeover.js';
import { IptablesWriter } from '../mesh/iptables-writer.js';
import { hostBoundPorts, shadowedPorts } from './host-ports.js';
import { openAgentApi } from '../api/agent-api.js';
import { sendJson, type ApiServer } from '../api/api-server.js';
import { kernelViewRoute } from '../explain/kernel-view-route.js';
import type { AgentObserver, AgentViews } from './agent-observer.js';
import { ENCRYPTION } from '../model/keys.js';
import { KeyringKeeper } from '../overlay/keyring-keeper.js';
import { DEFAULT_KEY_ROTATION_SECONDS } from '../overlay/keyring.js';
import { VtepProber } from '../overlay/vtep-prober.js';
import type { VtepPeerStatus } from '../overlay/vtep-liveness.js';
import { vtepProbeTarget } from './vtep-target.js';

/**
 * One agent per host: registers the node, follows the store, and reconciles the host to it.
 * Level-triggered: a pass computes the whole NodePlan from the mirrored intent and the node's facts,
 * and the reconciler applies only what differs from what it applied before. Store trouble never
 * reaches the data plane: the last state keeps serving, and writes are retried on later passes.
 */
export class Agent {
  private store!: KvStore;
  private cluster!: Cluster;
  private mirror!: ClusterMirror;
  private registration!: NodeRegistration;
  private supervisor!: TaskSupervisor;
  private dns!: DnsService;
  private health!: HealthServers;
  private socketKeeper: ResolverSocketKeeper | null = null;
  private apiServer: ApiServer | null = null;
  private reconciler!: NodeReconciler;
  private keyring!: KeyringKeeper;
  /** Echo probes to peers' VTEPs over the overlay (null: --vtep-probe-interval-ms 0). */
  private vtep: VtepProber | null = null;
  private readonly memo = new PlanMemo();
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private soonTimer: NodeJS.Timeout | null = null;
  private soonAt = 0;
  private running: Promise<void> | null = null;
  private again = false;
  private stopping = false;
  /** False until start() has built every part a pass uses: no pass runs before. */
  private started = false;
  private lastResync = 0;
  /** When the last pass started: the safety-net timer stays quiet while passes come on their own. */
  private lastPassAt = 0;
  private resyncs = 0;
  private readonly settings: NodeSettings;
  private lbKind: 'nftables' | 'ipvs' = 'nftables';
  private lastPlan: NodePlan | null = null;
  private lastStatusKey = '';
  private lastFailing = 0;
  private lastStatusTables: unknown[] = [];
  /** Published ports that local programs also hold, found on the last resync. */
  private shadowed: string[] = [];
  private lastServices: ClusterSnapshot['services'] = [];
  /** Nodes placement has seen, and since when each has been missing from the store (null: present). */
  private readonly lastSeenNodes = new Map<string, { node: ClusterSnapshot['nodes'][number]; goneSince: number | null }>();
  private ingressCache: { raw: ReadonlyMap<string, string>; endpoints: IngressEndpoint[] } | null = null;
  /** task id -> pid and restarts when it was last found listening, so a ready task is not re-read every pass. */
  private readonly readyAt = new Map<string, string>();
  /** Reports of completed passes, newest last (bounded), for tests and `inspect`. */
  readonly passes: PassReport[] = [];

  constructor(
    private readonly config: AgentConfig,
    private readonly storeOptions: OpenStoreOptions = {},
    /** The root logger: the agent and each part it builds log under their own component. */
    private readonly rootLog: Logger,
    /** Told of starts, passes, task events and store changes (metrics, health probes, systemd). */
    private readonly observer: AgentObserver | null = null,
  ) {
    this.log = rootLog.child({ component: 'agent' });
    this.settings = {
      nodeId: config.nodeName,
      netnsDir: config.netnsDir,
      underlayIp: config.advertiseAddr,
      underlayMtu: 1500,
      drainSeconds: config.drainSeconds,
      vtepProbe: config.vtepProbeIntervalMs > 0,
      // Settled in start() from the host's own routes when --gwbridge-subnet is not given.
      gwbridge: gwbridgeSettings(config.gwbridgeName, config.gwbridgeSubnet ?? '172.18.0.0/16'),
    };
  }

  /** Connects, registers (taking over a previous agent's lease), adopts what the kernel has, and starts reconciling. */
  async start(): Promise<void> {
    // Start libuv's threadpool here, before any worker enters a task namespace (machine.md trap).
    await import('node:fs/promises').then((fs) => fs.stat('/'));
    // The state directory's lock first: nothing below may act for a node another agent still runs.
    this.supervisor = new TaskSupervisor({ stateDir: join(this.config.stateDir, 'tasks'), onStateChange: (e) => this.onTaskEvent(e), log: this.rootLog });
    const resolv = taskResolvConf(safeRead('/etc/resolv.conf'));
    const upstreams = this.config.dnsUpstreams.length > 0 ? this.config.dnsUpstreams : resolv.upstreams;
    // The resolver's sockets outlive the agent in a keeper process: a restart serves the same sockets, and the
    // queries that came meanwhile waited in them instead of meeting a closed port. They are answered at once,
    // with the names last served, before the store is open (or while it is unreachable).
    this.socketKeeper = new ResolverSocketKeeper({ dir: this.config.stateDir, log: this.rootLog });
    const dns: DnsService = new DnsService({
      upstreams,
      workers: this.config.dnsWorkers,
      log: this.rootLog,
      held: this.socketKeeper.adopt(),
      onSocketsChanged: (what) => this.socketKeeper?.schedule(() => dns.heldSockets(), what),
    });
    this.dns = dns;
    const early = await dns.serveHeld();
    if (early > 0) this.log.info({ event: 'dns.served_early', namespaces: early });
    await this.readHostNetwork();
    this.store = await retryTransient('open store', () => openStore(this.config.store, { ...this.storeOptions, log: this.rootLog.child({ component: 'store' }) }), { log: this.log });
    this.cluster = new Cluster(this.store, { sandboxDir: this.config.netnsDir, log: this.rootLog });
    const leaseFile = join(this.config.stateDir, 'node-lease');
    const previousLease = readLeaseFile(leaseFile);
    checkUnderlayFamily(this.config.advertiseAddr, this.config.nodeName, await retryTransient('list nodes', () => this.cluster.listNodes(), { log: this.log }));
    this.registration = await retryTransient('register node', () => this.cluster.registerNode(
      { id: this.config.nodeName, name: this.config.nodeName, underlayIp: this.config.advertiseAddr },
      {
        ttlSeconds: this.config.leaseTtlSeconds,
        ...(previousLease ? { resumeLease: previousLease } : {}),
        onKeepAliveError: (err) => this.log.warn({ event: 'node.keepalive_failed', error: err.message }),
        onLeaseReplaced: (lease: string) => {
          this.log.warn({ event: 'node.lease_replaced', lease, hint: 'the node lease lapsed (store unreachable or stalled agent); registered again' });
          writeLeaseFile(leaseFile, lease);
          this.lastStatusKey = '';
          this.kick();
        },
      },
    ), { log: this.log });
    writeLeaseFile(leaseFile, this.registration.lease());
    this.lbKind = await selectLbBackend(this.config.lbBackend, this.config.hostNetns);
    this.settings.lbBackend = this.lbKind;
    const adopted = await this.supervisor.adoptOrphans();
    // After the supervisor: its state-dir lock makes any api.sock found here a dead agent's.
    this.apiServer = await openAgentApi({ ...this.config, node: this.config.nodeName, etcdTls: this.storeOptions.etcd?.tls, supervisor: this.supervisor, log: this.rootLog });
    // `meshnet explain` on another machine reads this node's kernel through here (read-only).
    const kernelView = kernelViewRoute({
      node: this.config.nodeName,
      location: { hostNetns: this.config.hostNetns, netnsDir: this.config.netnsDir },
      externalSandbox: (id) => this.lastPlan?.tasks.find((t) => t.record.id === id && t.external)?.sandbox,
    });
    this.apiServer?.route('GET', '/v1/kernel-view', async (req, res) => {
      const answer = await kernelView(req.query);
      sendJson(res, answer.status, answer.body);
    });
    // Each task gets the resolver at a port of its own behind NAT from 127.0.0.11:53, so tasks may serve :53.
    this.health = new HealthServers(this.config.hostNetns);
    const netnsDir = new NetnsDir(this.config.netnsDir);
    this.reconciler = new NodeReconciler(
      realNodeAdapters({ settings: this.settings, hostNetns: this.config.hostNetns, netnsDir, supervisor: this.supervisor, dns: this.dns, health: this.health, lbKind: this.lbKind, log: this.rootLog }),
      { resolvConf: resolv.taskResolvConf, log: this.log },
    );
    const onChange = () => {
      this.observer?.storeChanged();
      this.kick();
    };
    this.mirror = await ClusterMirror.open(this.store, { log: this.log, onChange, rawPrefixes: [INGRESS_ENDPOINTS, ENCRYPTION] });
    // A peer whose VTEP stops answering wakes a pass, as a store change does.
    if (this.config.vtepProbeIntervalMs > 0) this.vtep = new VtepProber({ intervalMs: this.config.vtepProbeIntervalMs, log: this.rootLog.child({ component: 'vtep' }), onChange: () => this.kick() });
    this.keyring = new KeyringKeeper(this.store, (this.config.keyRotationSeconds ?? DEFAULT_KEY_ROTATION_SECONDS) * 1000, this.rootLog.child({ component: 'encryption' }));
    // A restart keeps every task's gwbridge address: read what the namespaces hold before the first plan.
    const mine = this.mirror.snapshot().tasks.filter((t) => t.node === this.config.nodeName);
    await this.reconciler.adoptGwAddresses(mine.map((t) => ({ taskId: t.id, sandbox: t.external ? t.sandbox : netnsDir.path(taskNetnsName(t.id)) })));
    this.log.info({ event: 'agent.started', node: this.config.nodeName, advertiseAddr: this.config.advertiseAddr, lbBackend: this.lbKind, adoptedTasks: adopted.length, lease: this.registration.lease(), resumedLease: previousLease === this.registration.lease(), store: this.config.store.replace(/\/\/[^@]*@/, '//***@') });
    this.started = true;
    this.observer?.started(this.views());
    // Passes follow events (store changes, process exits) and the deadlines they carry (drains, readiness,
    // a vanished node's grace, the resync), each scheduled on its own; this timer is only a safety net
    // should a wake-up be lost: it kicks only when no pass started for a whole resync period, so an idle
    // agent plans once per resync, not twice.
    this.timer = setInterval(() => {
      if (Date.now() - this.lastPassAt >= this.config.resyncSeconds * 1000) this.kick();
    }, this.config.resyncSeconds * 1000);
    this.kick();
  }

  /** The agent API, for other parts to add routes (`agent.api?.route('GET', '/v1/...', handler)`); null before start(). */
  get api(): ApiServer | null {
    return this.apiServer;
  }

  /** The backend kind this agent chose. */
  get lbBackendKind(): 'nftables' | 'ipvs' {
    return this.lbKind;
  }

  /** Asks for a pass; passes never overlap, and a request during a pass runs one more after it. */
  kick(): void {
    if (this.stopping || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
  }

  /** A pass in `ms`, unless one is already due sooner (readiness of starting tasks). */
  private kickSoon(ms: number): void {
    if (this.stopping) return;
    const at = Date.now() + ms;
    if (this.soonTimer && this.soonAt <= at) return;
    if (this.soonTimer) clearTimeout(this.soonTimer);
    this.soonAt = at;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = null;
      this.kick();
    }, ms);
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        this.log.error({ event: 'reconcile.failed', error: (err as Error).message });
      }
    } while (this.again && !this.stopping);
  }

  /** One pass: store writes first (claims, drains), then the kernel and processes, then reports. */
  private async pass(): Promise<void> {
    const started = performance.now();
    this.lastPassAt = Date.now();
    const spawnedBefore = processesSpawned();
    let snapshot = this.mirror.snapshot();
    const graceNodes = this.graceNodes(snapshot);
    const wrote = this.mirror.connected ? await this.applyPlacement(snapshot, graceNodes) : false;
    if (wrote) snapshot = this.mirror.snapshot();
    const endpoints = await this.ingressEndpoints(snapshot);
    // The keyring of encrypted overlays: created or rotated here when due; a pass when its primary key switches.
    const keyring = await this.keyring.current(this.mirror.raw(ENCRYPTION), snapshot.networks, this.mirror.connected, Date.now());
    if (keyring.wakeAt !== null) this.kickSoon(Math.max(0, keyring.wakeAt - Date.now()) + 20);
    const plan = desiredNode(snapshot, this.settings, {
      gwAddresses: this.reconciler.appliedGwAddresses(),
      unusableExternal: this.unusableExternal(snapshot),
      ingressEndpoints: endpoints,
      now: Date.now(),
      graceNodes,
      ...(keyring.ring ? { keyring: keyring.ring } : {}),
      ...(this.vtep ? { unreachableNodes: this.vtep.unreachable() } : {}),
    }, this.memo);
    if (this.lastPlan === null || conflictsChanged(this.lastPlan, plan)) {
      for (const c of plan.conflicts) this.log.warn({ event: 'mesh.conflict', code: c.code, error: c.message });
      this.lastStatusKey = '';
    }
    this.lastPlan = plan;
    this.scheduleDrainDeadlines(snapshot);
    const resync = Date.now() - this.lastResync >= this.config.resyncSeconds * 1000;
    // The resync comes on time even when nothing else wakes the agent.
    this.kickSoon(Math.max(0, this.lastResync + this.config.resyncSeconds * 1000 - Date.now()) + (resync ? this.config.resyncSeconds * 1000 : 0));
    // The first pass checks and re-reads everything (adoption). Later resyncs check the node-wide targets
    // and a rotating share of the per-task ones; every tenth also re-reads the node-wide ones through
    // their writers and prunes (NodeReconciler.apply, resyncRound).
    const round = resync ? this.resyncs++ : -1;
    const deep = resync && round % 10 === 0;
    if (resync) {
      this.lastResync = Date.now();
      // A deep resync also re-reads the store, healing anything a watch could have missed (a relist
      // decodes every record: at every resync it was a good part of an idle agent's CPU).
      if (deep && this.mirror.connected) await this.mirror.relist().catch((err: Error) => this.log.warn({ event: 'store.relist_failed', error: err.message }));
    }
    // Host sockets are read on the resync and when published ports may have changed, never on every pass.
    // The mirror hands out a new array on any change, with the same record objects where nothing changed.
    const servicesChanged = snapshot.services.length !== this.lastServices.length || snapshot.services.some((sv, i) => sv !== this.lastServices[i]);
    if (resync || servicesChanged) this.checkShadowedPorts(snapshot);
    this.lastServices = snapshot.services;
    const report = await this.reconciler.apply(plan, { resync, deep, ...(round > 0 ? { round } : {}) });
    // The first pass attached every namespace this node serves: an earlier agent's sockets left unclaimed
    // belong to namespaces gone meanwhile.
    if (round === 0) await this.dns.releaseUnclaimed();
    this.vtep?.follow(vtepProbeTarget(plan, this.config.netnsDir, snapshot.nodes, endpoints, this.config.nodeName));
    if (this.mirror.connected) {
      // Readiness of a task already found listening is re-read on the first pass, then on each task's own
      // check round (resyncRound): reading every task's sockets at once was a third of a deep resync.
      await this.reportTaskStates(plan, resync ? (taskId) => round <= 0 || resyncRound('process', taskId, round).check : null);
      await this.publishStatus(plan).catch((err: Error) => this.log.warn({ event: 'node.status_failed', error: err.message }));
    }
    // What the resync read and dropped (netlink dumps, iptables-save output, nft caches) goes back to the kernel.
    if (resync) void trimMallocHeap();
    this.passes.push(report);
    if (this.passes.length > 50) this.passes.shift();
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const spawned = processesSpawned() - spawnedBefore;
    if (reportChanges(report) > 0 || wrote) {
      this.log[report.errors.length ? 'warn' : 'info']({ event: 'reconcile.pass', revision: snapshot.revision, resync, ms, spawned, ...report });
    } else {
      this.log.debug({ event: 'reconcile.pass', revision: snapshot.revision, resync, ms, spawned, changes: 0 });
    }
    this.observer?.passFinished({ seconds: ms / 1000, report, plan, snapshot, resync });
  }

  /** What observers read when asked (a scrape, a probe): live, never computed on a pass. */
  private views(): AgentViews {
    return {
      failingTargets: () => this.reconciler.status().filter((t) => t.error !== undefined),
      storeConnected: () => this.mirror.connected,
      storeRevision: () => this.mirror.seenRevision,
      tasks: () => this.supervisor.list(),
      dnsCounters: () => this.dns.counters(),
    };
  }

  /** The ingress endpoints, claiming this node's once the cluster has an ingress network. */
  private async ingressEndpoints(snapshot: ClusterSnapshot): Promise<IngressEndpoint[]> {
    const raw = this.mirror.raw(INGRESS_ENDPOINTS);
    if (this.ingressCache?.raw !== raw || this.ingressCache.endpoints.length !== raw.size) {
      this.ingressCache = { raw, endpoints: parseIngressEndpoints(raw, (key, error) => this.log.error({ event: 'store.record_invalid', key, error })) };
    }
    const ingress = snapshot.networks.find((n) => n.ingress);
    let endpoints = this.ingressCache.endpoints;
    if (ingress && this.mirror.connected && !endpoints.some((e) => e.node === this.config.nodeName)) {
      try {
        const mine = await claimIngressEndpoint(this.store, this.config.nodeName, ingress);
        endpoints = [...endpoints.filter((e) => e.node !== mine.node), mine];
        this.log.info({ event: 'ingress.endpoint_claimed', ip: mine.ip });
      } catch (err) {
        this.log.warn({ event: 'ingress.endpoint_claim_failed', error: (err as Error).message });
      }
    }
    return endpoints;
  }

  /** A pass when the next draining task's deadline passes: its weight-0 entry leaves the tables, and its owner removes it. */
  private scheduleDrainDeadlines(snapshot: ClusterSnapshot): void {
    const now = Date.now();
    let next = Infinity;
    for (const t of snapshot.tasks) {
      if (t.desiredState !== 'shutdown') continue;
      const deadline = Date.parse(t.updatedAt) + this.config.drainSeconds * 1000;
      if (deadline > now) next = Math.min(next, deadline);
    }
    if (next !== Infinity) this.kickSoon(next - now + 20);
  }

  /** Reports published ports that a program on this host also listens on (read on the resync only). */
  private checkShadowedPorts(snapshot: ClusterSnapshot): void {
    try {
      const ours = new Set(snapshot.services.flatMap((sv) => (sv.healthPort ? [`tcp/${sv.healthPort}`] : [])));
      const found = shadowedPorts(snapshot, hostBoundPorts(this.config.hostNetns, ours));
      for (const message of found) if (!this.shadowed.includes(message)) this.log.warn({ event: 'mesh.port_shadowed', error: message });
      if (found.join('\n') !== this.shadowed.join('\n')) this.lastStatusKey = '';
      this.shadowed = found;
    } catch (err) {
      this.log.warn({ event: 'mesh.port_check_failed', error: (err as Error).message });
    }
  }

  /** Attached namespaces that are gone or are not network namespaces (never the host's own): left unwired. */
  private unusableExternal(snapshot: ClusterSnapshot): Set<string> {
    const out = new Set<string>();
    for (const t of snapshot.tasks) {
      if (t.node !== this.config.nodeName || !t.external) continue;
      const why = externalNamespaceProblem(t.sandbox);
      if (why) {
        out.add(t.id);
        if (!this.readyAt.has(`unusable:${t.id}`)) {
          this.log.warn({ event: 'task.external_netns_unusable', task: t.id, sandbox: t.sandbox, error: why, hint: 'meshnet task detach it, or recreate the namespace' });
          this.readyAt.set(`unusable:${t.id}`, why);
        }
      } else {
        this.readyAt.delete(`unusable:${t.id}`);
      }
    }
    return out;
  }

  /** Claims, drains and removes tasks in the store; true when it wrote anything. */
  private async applyPlacement(snapshot: ClusterSnapshot, graceNodes: ClusterSnapshot['nodes']): Promise<boolean> {
    // A node in its grace keeps its slots: its lease may only have lapsed, and its tasks must not be replaced meanwhile.
    const view = graceNodes.length === 0 ? snapshot : { ...snapshot, nodes: [...snapshot.nodes, ...graceNodes] };
    const actions = placementActions(view, this.config.nodeName, new Date(), this.config.drainSeconds);
    let wrote = false;
    for (const c of actions.claim) {
      try {
        const before = snapshot.tasks.find((t) => t.service === c.service && t.slot === c.slot);
        const task = await this.cluster.claimTask(c.service, c.slot, this.config.nodeName);
        // The mirror may not show our own last write yet: a claim that found the task already ours wrote nothing.
        if (task.id === before?.id) continue;
        this.log.info({ event: 'task.claimed', service: c.service, slot: c.slot, task: task.id });
        wrote = true;
      } catch (err) {
        this.log.warn({ event: 'task.claim_failed', service: c.service, slot: c.slot, error: (err as Error).message });
      }
    }
    for (const t of actions.drain) {
      try {
        await this.cluster.updateTaskState(t.service, t.slot, t.id, { desiredState: 'shutdown', message: `draining for ${this.config.drainSeconds}s` });
        this.log.info({ event: 'task.draining', service: t.service, slot: t.slot, task: t.id });
        wrote = true;
      } catch (err) {
        this.log.warn({ event: 'task.drain_failed', task: t.id, error: (err as Error).message });
      }
    }
    for (const t of actions.remove) {
      try {
        await this.supervisor.stop(t.id, { graceMs: 5000 });
        await this.cluster.removeTask(t.service, t.slot, t.id);
        this.log.info({ event: 'task.removed', service: t.service, slot: t.slot, task: t.id });
        wrote = true;
      } catch (err) {
        // A task that will not stop keeps its record, so it is tried again; the rest of the pass goes on.
        this.log.error({ event: 'task.remove_failed', task: t.id, error: (err as Error).message });
      }
    }
    if (actions.rollout?.start.length) wrote = (await startSuccessors(this.cluster, actions.rollout.start, this.config.nodeName, snapshot.tasks, this.log)) || wrote;
    if (actions.rollout?.writes.length) wrote = (await writeRolloutSteps(this.cluster, actions.rollout.writes, snapshot.tasks, this.log)) || wrote;
    if (actions.rollout?.wakeAt !== undefined) this.kickSoon(Math.max(0, actions.rollout.wakeAt - Date.now()) + 20);
    return wrote;
  }

  /**
   * Nodes whose record vanished less than one lease TTL ago. The data plane drops their backends at
   * once (it trusts the lease), but keeps their overlay entries and their slots for the grace: a node
   * whose lease merely lapsed (a store hiccup, a stalled keepalive) registers again within it. A dead
   * node's slots move, and its overlay entries go, when the grace ends.
   */
  private graceNodes(snapshot: ClusterSnapshot): ClusterSnapshot['nodes'] {
    const now = Date.now();
    const present = new Set(snapshot.nodes.map((n) => n.id));
    for (const n of snapshot.nodes) this.lastSeenNodes.set(n.id, { node: n, goneSince: null });
    const held: ClusterSnapshot['nodes'] = [];
    for (const [id, seen] of this.lastSeenNodes) {
      // Our own lapse stops our placement instead (placementActions needs our record).
      if (present.has(id) || id === this.config.nodeName) continue;
      seen.goneSince ??= now;
      if (now - seen.goneSince < this.config.leaseTtlSeconds * 1000) {
        held.push(seen.node);
        this.kickSoon(this.config.leaseTtlSeconds * 1000 - (now - seen.goneSince) + 50);
      } else this.lastSeenNodes.delete(id);
    }
    return held;
  }

  /** Writes process states to the store where they differ from what it says. */
  private async reportTaskStates(plan: NodePlan, reread: ((taskId: string) => boolean) | null): Promise<void> {
    let starting = false;
    const planned = new Set<string>();
    for (const t of plan.tasks) {
      planned.add(t.record.id);
      if (t.external) continue;
      const info = this.supervisor.get(t.record.id);
      if (!info) continue;
      const up = info.state === 'running';
      // Running means ready: listening on the ports it serves, so no traffic reaches a process still starting.
      let ready = false;
      if (up) {
        const stamp = `${info.pid}/${info.restarts}`;
        if (this.readyAt.get(t.record.id) === stamp && !reread?.(t.record.id)) ready = true;
        else if (taskReady(t.sandbox, t.service.ports)) {
          ready = true;
          this.readyAt.set(t.record.id, stamp);
        } else this.readyAt.delete(t.record.id);
      }
      if (up && !ready) starting = true;
      // With a health check, running (ready) also needs healthy: task-readiness.ts taskReport decides.
      const report = taskReport(info, ready, t.service.ports, Date.now(), this.config.readyDeadlineSeconds * 1000);
      const observed = report.state;
      // Why it is not running (`exit 3`, `not listening on 80 after 30 s`); a draining task keeps the drain's message.
      const message = t.record.desiredState === 'running' ? report.message : t.record.message;
      const healthChanged = healthDiffers(report.health, t.record.health);
      if (!observed || (observed === t.record.state && info.restarts === t.record.restarts && message === t.record.message && !healthChanged)) continue;
      await this.cluster
        .updateTaskState(t.record.service, t.record.slot, t.record.id, { state: observed, restarts: info.restarts, ...(message !== undefined ? { message } : {}), ...(healthChanged ? { health: report.health ?? null } : {}), ...(info.reason !== undefined ? { lastExit: info.reason } : {}) })
        .catch((err: Error) => this.log.warn({ event: 'task.state_report_failed', task: t.record.id, error: err.message }));
    }
    for (const id of this.readyAt.keys()) if (!planned.has(id) && !id.startsWith('unusable:')) this.readyAt.delete(id);
    // A process is up but not listening yet: look again soon, so its traffic starts within ~100 ms of listening.
    if (starting) this.kickSoon(100);
  }

  /** Publishes what this node programmed (for `meshnet service inspect`) when it changed. */
  private async publishStatus(plan: NodePlan): Promise<void> {
    const tables = plan.lbTables.map((t) => t.table);
    const failingNow = this.reconciler.failingCount();
    if (failingNow !== this.lastFailing) this.lastStatusKey = '';
    this.lastFailing = failingNow;
    if (this.lastStatusKey && tables.length === this.lastStatusTables.length && tables.every((t, i) => t === this.lastStatusTables[i])) return;
    // What this node cannot do right now (a health port another program holds, a refused rule) is the
    // operator's to see in `service inspect` / `node inspect`, not only in this host's log.
    const failing = this.reconciler.status().filter((t) => t.error).map((t) => `${t.surface} ${t.target}: ${t.error}`);
    const conflicts = [...plan.conflicts.map((c) => c.message), ...this.shadowed, ...failing];
    const status = publishableStatus(this.config.nodeName, this.lbKind, this.mirror.snapshot(), tables, conflicts, this.apiServer?.endpoint);
    const key = JSON.stringify([status.lbBackend, status.services, status.conflicts]);
    this.lastStatusTables = tables;
    if (key === this.lastStatusKey) return;
    await writeNodeStatus(this.store, status, this.registration.lease());
    this.lastStatusKey = key;
  }

  private onTaskEvent(e: TaskStateEvent): void {
    this.observer?.taskChanged(e);
    this.log[e.state === 'failed' ? 'warn' : 'info']({ event: 'task.process', task: e.taskId, state: e.state, pid: e.pid, exitCode: e.exitCode, restarts: e.restarts, message: e.message });
    this.readyAt.delete(e.taskId);
    this.kick();
  }

  /**
   * Reads the host's addresses and routes once: the underlay MTU (VXLAN's overhead comes off it), the
   * gwbridge subnet when none was given (the first free /16, Docker's order, that no route or address
   * of the host overlaps), and whether DOCKER-INGRESS holds a Docker Swarm node's rules.
   */
  private async readHostNetwork(): Promise<void> {
    const r = Rtnl.open(this.config.hostNetns);
    try {
      const addrs = await r.addresses();
      // A v6 underlay (issue 14): its address is among the v6 ones, read only then.
      const underlay = this.config.advertiseAddr.includes(':') ? await r.addresses6() : addrs;
      const own = underlay.find((a) => a.cidr.split('/')[0] === this.config.advertiseAddr);
      if (!own) throw new Error(`--advertise-addr ${this.config.advertiseAddr} is not an address of this host: give one of ${underlay.map((a) => a.cidr).join(', ')}`);
      this.settings.underlayMtu = (await r.requireLink(own.link)).mtu;
      if (this.config.gwbridgeSubnet === undefined) {
        const routes = await r.routes();
        const cidrs = [...addrs.map((a) => ({ cidr: a.cidr, dev: a.link })), ...routes.filter((x) => x.dst !== 'default').map((x) => ({ cidr: x.dst, ...(x.dev ? { dev: x.dev } : {}) }))];
        const subnet = chooseGwbridgeSubnet(cidrs, { bridge: this.config.gwbridgeName });
        this.settings.gwbridge = gwbridgeSettings(this.config.gwbridgeName, subnet);
        this.log.info({ event: 'gwbridge.subnet_chosen', subnet, hint: 'give --gwbridge-subnet to pin it' });
      }
    } finally {
      r.close();
    }
    const state = await new IptablesWriter({ netns: this.config.hostNetns }).read(['nat', 'filter']);
    const taken = checkDockerIngressTakeover(state, { gwbridge: this.settings.gwbridge.name, sboxAddress: this.settings.gwbridge.sboxAddress }, this.config.allowDockerIngressTakeover);
    for (const rule of taken) this.log.warn({ event: 'mesh.docker_ingress_takeover', table: rule.table, chain: rule.chain, rule: rule.rule });
  }

  /** Each probed peer's VTEP verdict (empty without probes), for metrics. */
  vtepPeers(): VtepPeerStatus[] {
    return this.vtep?.status() ?? [];
  }

  /** The last computed node plan (for inspect and tests). */
  get plan(): NodePlan | null {
    return this.lastPlan;
  }

  /** Stops reconciling and leaves the kernel and task processes as they are (a restart adopts them). */
  async stop(opts: { deregister?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.soonTimer) clearTimeout(this.soonTimer);
    this.mirror?.close();
    await this.running;
    this.vtep?.close();
    if (opts.deregister) await this.registration.close();
    else this.registration?.stop();
    await this.health?.close();
    await this.apiServer?.close();
    this.supervisor?.close();
    // The keeper stays, holding the resolver's sockets for the next agent.
    this.socketKeeper?.close();
    await this.dns?.close();
    this.reconciler?.close();
    await this.store?.close();
  }
}

/** The gwbridge's addresses: the gateway is the subnet's first address, the ingress sandbox's leg the second. */
function gwbridgeSettings(name: string, subnet: string): NodeSettings['gwbridge'] {
  const { ip: base, prefix } = parseCidr(subnet);
  if (prefix > 29) throw new Error(`--gwbridge-subnet ${subnet} is too small: use /29 or larger`);
  return { name, subnet, gateway: intToIpv4(ipv4ToInt(base) + 1), sboxAddress: intToIpv4(ipv4ToInt(base) + 2) };
}

function conflictsChanged(a: NodePlan, b: NodePlan): boolean {
  const key = (p: NodePlan) => p.conflicts.map((c) => c.message).sort().join('\n');
  return key(a) !== key(b);
}

// nsfs is one device: a namespace file is a file on it, and the host's own namespace is never a task's.
const [NSFS_DEV, HOST_NETNS_INODE] = homeNetnsIdentity().split(':');

/** Why an attached namespace path cannot be wired, or null when it is a real network namespace other than the host's. */
export function externalNamespaceProblem(path: string): string | null {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 'the namespace file is gone';
  }
  if (String(st.dev) !== NSFS_DEV) return 'not a network namespace file';
  if (String(st.ino) === HOST_NETNS_INODE) return 'it is the host namespace';
  return null;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
