import { stableHash32 } from '../model/stable-hash.js';
import type { Logger } from '../log/logger.js';
import type { OverlayInput } from '../overlay/overlay-spec.js';
import { overlayNetnsName } from '../overlay/overlay-state.js';
import type { NameView } from '../dns/name-view.js';
import type { HealthPortPlan, HostPlan } from '../mesh/mesh-plan.js';
import type { IptablesRuleSet } from '../mesh/iptables-ruleset.js';
import type { LbBackend, LbTable } from '../vip/lb-table.js';
import type { TaskInfo } from '../tasks/supervisor.js';
import type { TaskSpec } from '../tasks/task-spec.js';
import { lifecycleFields } from '../model/service-health.js';
import type { GwLeg } from './gwbridge.js';
import { AppliedCache, type Surface, type TargetStatus } from './applied-cache.js';
import { explainChange, type ApplyReason } from './change-explainer.js';
import { INGRESS_SBOX, type NodePlan, type ProcessPlan, type TaskRules } from './node-plan.js';
import type { EncryptionPlan } from '../overlay/encryption-plan.js';

/** What one pass changed, surface by surface; all zeros means the kernel already matched. */
export interface PassReport {
  namespaces: number;
  sysctls: number;
  gwLegs: number;
  overlayOps: number;
  lbChanges: number;
  meshRules: number;
  health: number;
  processes: number;
  dns: number;
  removed: number;
  pruned: number;
  errors: string[];
}

/** Sum of a report's changes. */
export function reportChanges(r: PassReport): number {
  return r.namespaces + r.sysctls + r.gwLegs + r.overlayOps + r.lbChanges + r.meshRules + r.health + r.processes + r.dns + r.removed + r.pruned;
}

/** The kernel and process adapters the reconciler drives: real ones in the agent, fakes in tests. */
export interface NodeAdapters {
  namespaces: { dir: string; exists(name: string): boolean; create(name: string): void; list(): string[]; path(name: string): string; delete(name: string): void };
  /** Sets a sysctl unless it holds the value already; returns whether it wrote. */
  sysctl: (netns: string | null, key: string, value: string) => boolean;
  gw: {
    ensureBridge(): Promise<void>;
    /** Host-side names of the veths on the bridge. */
    legs(): Promise<string[]>;
    /** The gwbridge address a namespace holds, read from the kernel (adoption). */
    bridgeAddressIn(sandbox: string): Promise<string | undefined>;
    ensureLeg(leg: GwLeg): Promise<boolean>;
    removeLeg(hostIf: string): Promise<void>;
  };
  overlay: { apply(input: OverlayInput): Promise<{ ops: readonly unknown[] }> };
  /** The host's ESP states and policies for encrypted overlays (absent: this node never encrypts). */
  encryption?: { apply(plan: EncryptionPlan | null): Promise<{ ops: readonly unknown[] }> };
  /** A load-balancing backend for one namespace. */
  lbFor(netns: string): LbBackend & { reconcile?(table: LbTable): Promise<{ changes: number }>; close?(): void };
  mesh: {
    /** The host's DOCKER-INGRESS rules (null: none); `resync` re-reads the kernel first. */
    applyHost(plan: HostPlan | null, opts: CheckOptions): Promise<boolean>;
    /** One rule set of the host firewall (each is its own owner in the host's iptables writer). */
    applyHostFirewall(set: IptablesRuleSet, opts: CheckOptions): Promise<boolean>;
    /** The host's v6 DOCKER-INGRESS (null: remove it); absent: this node never writes ip6tables. */
    applyHost6?(set: IptablesRuleSet | null, opts: CheckOptions): Promise<boolean>;
    /** A task's REDIRECT rules and return route. */
    applyTask(rules: TaskRules, opts: CheckOptions): Promise<boolean>;
    /** Forgets a task namespace that went away (its writer's cached state). */
    forgetTask(netns: string): void;
    /** Reads ahead, all in one go, the tables of task namespaces whose rules are about to be applied for the first time. */
    prefetchTasks?(netns: readonly string[]): Promise<void>;
  };
  /** Returns how many health servers it started, stopped or changed. */
  health: { reconcile(plans: readonly HealthPortPlan[]): Promise<number> };
  dns: {
    /** Serves `view` in the namespace (its resolver's sockets bound); its NAT is applyNat's. */
    attach(sandbox: string, view: NameView): Promise<void>;
    /** Returns whether the view differs from the one served. */
    update(sandbox: string, view: NameView): Promise<boolean>;
    detach(sandbox: string): Promise<void>;
    /** The port the namespace's resolver listens on (undefined until bound). */
    portOf(sandbox: string): number | undefined;
    /** Maps the namespace's 127.0.0.11:53 to `port`; returns whether the rule changed. */
    applyNat(sandbox: string, port: number, opts: CheckOptions): Promise<boolean>;
  };
  processes: { has(taskId: string): boolean; get(taskId: string): TaskInfo | undefined; list(): TaskInfo[]; ensureRunning(spec: TaskSpec): Promise<TaskInfo>; stop(taskId: string, opts: { graceMs: number }): Promise<void> };
  close(): void;
}

/**
 * How an iptables target is applied on a pass: `resync` re-reads the kernel (deep rounds); `verify`, on
 * every resync that checks the target, re-reads only when the namespace's nf_tables generation shows
 * someone else's commit (IptablesWriter), so drift made by hand is repaired within one resync, not one deep round.
 */
export interface CheckOptions {
  resync: boolean;
  verify?: boolean;
}

/** A target compared by its content (the default; shared so a call allocates no options object). */
const BY_CONTENT: { byIdentity?: boolean } = Object.freeze({});

/**
 * Resyncs over which every per-task target is checked against the kernel once (40 x 30 s: every 20 min).
 * A check reads the task's namespace (links, addresses, routes, its table): ~10 ms of an agent's CPU per
 * task with everything it allocates, so at 100 tasks a 5-minute cycle made the light resyncs most of an
 * idle agent's CPU. Any change to a task applies its targets at once; this only bounds how long drift
 * made behind meshnet's back (inside one task's namespace) can last.
 */
export const CHECK_ROUNDS = 40;
/** Resyncs between checks of an overlay, which reads every local endpoint's namespace (10 x 30 s: every 5 min). */
export const OVERLAY_CHECK_ROUNDS = 10;
/** Resyncs over which every per-task target is re-read through its writer once (120 x 30 s: hourly). */
export const DEEP_ROUNDS = 120;

/** A target that belongs to one task (its namespace, leg, process, tables), not to the node. */
export function isTaskTarget(surface: Surface, target: string): boolean {
  return surface === 'process' || /(^|\/)t-[a-z0-9]+( |$)/.test(target) || /^mg[0-9a-f]{11}$/.test(target);
}

/**
 * What periodic resync number `round` does with one target. Node-wide targets (bridge, host rules,
 * the ingress sandbox) are checked on every resync, overlays every CHECK_ROUNDS. Per-task targets are spread over rounds
 * by a stable hash, so an idle node's resync costs O(tasks / CHECK_ROUNDS) netlink reads and
 * O(tasks / DEEP_ROUNDS) iptables-save forks instead of O(tasks) of each: the fork of a large agent
 * is what an idle node spent its CPU on (about 25 ms each at 100 tasks).
 */
export function resyncRound(surface: Surface, target: string, round: number): { check: boolean; deep: boolean } {
  // An overlay's check reads every local endpoint's namespace (link, addresses, routes): O(tasks) on the
  // ingress network, so it comes every OVERLAY_CHECK_ROUNDS rounds, with the deep resyncs.
  if (surface === 'overlay') return { check: round % OVERLAY_CHECK_ROUNDS === 0, deep: round % OVERLAY_CHECK_ROUNDS === 0 };
  if (!isTaskTarget(surface, target)) return { check: true, deep: true };
  const h = stableHash32(target);
  const deep = h % DEEP_ROUNDS === round % DEEP_ROUNDS;
  return { check: deep || h % CHECK_ROUNDS === round % CHECK_ROUNDS, deep };
}

/** Namespaces meshnet makes in its netns dir (tasks, overlays, the ingress sandbox): the only ones it prunes. */
const OWN_NETNS = /^(t-[a-z0-9]+|ov-.+|ingress_sbox)$/;
/** Host-side veths meshnet puts on the bridge. */
const OWN_LEG = /^(mg[0-9a-f]{11}|mn-sbox)$/;

/**
 * Makes the node match a NodePlan, touching only the targets whose slice of the plan differs from what
 * was last applied (AppliedCache). A normal pass forks nothing and dumps nothing for targets that did
 * not change; the periodic resync (and the first pass after start) forgets the cache, checks every
 * target against the kernel, and prunes what meshnet made but the plan no longer wants. Each target is
 * isolated: one that fails is reported and retried on the next pass while the others converge
 * (Cilium's reconciler: desired tables, incremental reconcile, periodic full reconcile, per-object status).
 */
export class NodeReconciler {
  private readonly cache = new AppliedCache();
  private readonly lbs = new Map<string, ReturnType<NodeAdapters['lbFor']>>();
  /** task id -> gwbridge address as applied (the planner keeps a task's address for its life). */
  private readonly gwAddresses = new Map<string, string>();
  private readonly lastLogged = new Map<string, number>();
  /** Sandboxes the resolver serves: its own state, kept across resyncs (it is not kernel state). */
  private readonly dnsAttached = new Set<string>();
  /** This pass explains each change at debug level (decided once per pass: free at info). */
  private explain: { resync: boolean } | null = null;

  constructor(
    private readonly a: NodeAdapters,
    private readonly opts: { resolvConf: string; log: Logger; stopGraceMs?: number },
  ) {}

  /** The gwbridge address of each task as applied, for the planner (facts). */
  appliedGwAddresses(): Record<string, string> {
    return Object.fromEntries(this.gwAddresses);
  }

  /** Reads the gwbridge addresses existing task namespaces hold (start: a restart keeps every address). */
  async adoptGwAddresses(tasks: readonly { taskId: string; sandbox: string }[]): Promise<void> {
    for (const t of tasks) {
      const ip = await this.a.gw.bridgeAddressIn(t.sandbox).catch(() => undefined);
      if (ip) this.gwAddresses.set(t.taskId, ip);
    }
  }

  /** How many targets are failing now. */
  failingCount(): number {
    return this.cache.failingCount();
  }

  /** Every target's status (what is applied, what fails and since when). */
  status(): TargetStatus[] {
    return this.cache.status();
  }

  /**
   * One pass. `resync`: check targets against the kernel; `deep`: also have the writers and backends
   * re-read it (iptables-save, an atomic nft rebuild) and prune unknown objects. Without `round` a
   * resync covers every target; with it (the agent's periodic resyncs, numbered) it covers every
   * node-wide target and the round's share of the per-task ones (resyncRound).
   */
  async apply(plan: NodePlan, opts: { resync: boolean; deep?: boolean; round?: number }): Promise<PassReport> {
    const deep = opts.resync && opts.deep !== false;
    const round = opts.resync ? opts.round : undefined;
    const r: PassReport = { namespaces: 0, sysctls: 0, gwLegs: 0, overlayOps: 0, lbChanges: 0, meshRules: 0, health: 0, processes: 0, dns: 0, removed: 0, pruned: 0, errors: [] };
    if (opts.resync) this.cache.invalidate(round === undefined ? undefined : (surface, target) => resyncRound(surface, target, round).check);
    // Whether a target checked in this pass also re-reads the kernel through its writer.
    const deepFor = (surface: Surface, target: string): boolean => (round === undefined || !isTaskTarget(surface, target) ? deep : resyncRound(surface, target, round).deep);
    this.explain = this.opts.log.isLevelEnabled('debug') ? { resync: opts.resync } : null;
    const sboxPath = this.a.namespaces.path(INGRESS_SBOX);

    if (!this.cache.holds('namespace', '(bridge)', 'wanted')) await this.applyTarget(r, 'namespace', '(bridge)', 'wanted', async () => {
      await this.a.gw.ensureBridge();
    });

    // The host firewall before any leg exists: a new leg is isolated from its first packet.
    for (const set of plan.hostFirewall) {
      if (!this.cache.holds('hostrules', set.comment, set)) await this.applyTarget(r, 'hostrules', set.comment, set, async () => {
        if (await this.a.mesh.applyHostFirewall(set, { resync: deep, verify: opts.resync })) r.meshRules++;
      });
    }

    // Namespaces first: legs, overlays and rules go into them.
    for (const name of plan.namespaces) {
      if (!this.cache.holds('namespace', name, true)) await this.applyTarget(r, 'namespace', name, true, async () => {
        if (this.a.namespaces.exists(name)) return false;
        this.a.namespaces.create(name);
        r.namespaces++;
        return true;
      });
    }

    for (const leg of plan.gwLegs) {
      if (!this.cache.holds('gwleg', leg.hostIf, leg)) await this.applyTarget(r, 'gwleg', leg.hostIf, leg, async () => {
        if (await this.a.gw.ensureLeg(leg)) r.gwLegs++;
      });
    }
    for (const t of plan.tasks) if (!this.cache.failing('gwleg', t.gw.hostIf)) this.gwAddresses.set(t.record.id, t.gw.ip);

    // The resolver as soon as a namespace and its lo stand (the leg brings lo up): a new task's process
    // can resolve names from its first instruction. After an agent restart each resolver binds the port it
    // had (stable per namespace), which the NAT rule the old agent left still points at: names answer again
    // before anything of the task's is read back.
    for (const { sandbox, view } of plan.nameViews) {
      if (!this.cache.holds('dns', sandbox, view)) await this.applyTarget(r, 'dns', sandbox, view, async () => {
        // A resync re-checks a share of the views: a view found as it was is no change.
        if (!this.dnsAttached.has(sandbox)) {
          await this.a.dns.attach(sandbox, view);
          this.dnsAttached.add(sandbox);
          r.dns++;
        } else if (await this.a.dns.update(sandbox, view)) r.dns++;
      });
    }

    // Tasks whose rules this agent has not applied yet (all of them after a restart) have their tables read
    // now, in one batch; each apply below then finds its read current instead of forking.
    const unheld = plan.taskRules.filter((t) => !this.cache.holds('taskrules', t.netns, t)).map((t) => t.netns);
    if (unheld.length > 1 && this.a.mesh.prefetchTasks) await this.a.mesh.prefetchTasks(unheld);

    // Each resolver's NAT (:53 to its port) follows its port: a resolver worker that restarted may have had to
    // take another one.
    for (const { sandbox } of plan.nameViews) {
      const port = this.dnsAttached.has(sandbox) ? this.a.dns.portOf(sandbox) : undefined;
      if (port !== undefined && !this.cache.holds('dnsnat', sandbox, port)) await this.applyTarget(r, 'dnsnat', sandbox, port, async () => {
        if (await this.a.dns.applyNat(sandbox, port, { resync: deepFor('dnsnat', sandbox), verify: opts.resync })) r.dns++;
      });
    }

    for (const s of plan.sysctls) {
      const name = `${s.netns ?? 'host'} ${s.key}`;
      if (!this.cache.holds('sysctl', name, s.value)) await this.applyTarget(r, 'sysctl', name, s.value, async () => {
        if (this.a.sysctl(s.netns, s.key, s.value)) r.sysctls++;
      });
    }

    // ESP before the overlays: an encrypted network's first datagram already finds its policy (or is dropped).
    const encryption = this.a.encryption;
    if (encryption) {
      if (!this.cache.holds('encryption', 'host', plan.encryption)) await this.applyTarget(r, 'encryption', 'host', plan.encryption, async () => {
        r.overlayOps += (await encryption.apply(plan.encryption)).ops.length;
      });
    }

    for (const input of plan.overlays) {
      if (!this.cache.holds('overlay', input.network.name, input)) await this.applyTarget(r, 'overlay', input.network.name, input, async () => {
        r.overlayOps += (await this.a.overlay.apply(input)).ops.length;
      });
    }

    // Load balancing before processes start, so a task's first connection to a VIP already works;
    // the sandbox's table and the tasks' redirects before the host DNATs a new published port to them.
    for (const { netns, table } of plan.lbTables) {
      if (!this.cache.holds('lb', netns, table)) await this.applyTarget(r, 'lb', netns, table, async () => {
        // A backend's first apply adopts what the kernel holds (a restart must not rebuild tables);
        // later resyncs reconcile, which also removes anything stale.
        const fresh = !this.lbs.has(netns);
        const lb = this.lbOf(netns);
        // A check that is not a deep round verifies: the nftables backend rebuilds only after someone else's commit.
        r.lbChanges += (deepFor('lb', netns) && !fresh && lb.reconcile ? await lb.reconcile(table) : opts.resync && !fresh && lb.verify ? await lb.verify(table) : await lb.apply(table)).changes;
        // Big tables are shared by identity between passes (the planner's memo); small ones, like the
        // sandbox's, are rebuilt each pass and compared by content, which costs little at their size.
      }, { byIdentity: table.services.length > 64 });
    }
    for (const rules of plan.taskRules) {
      if (!this.cache.holds('taskrules', rules.netns, rules)) await this.applyTarget(r, 'taskrules', rules.netns, rules, async () => {
        if (await this.a.mesh.applyTask(rules, { resync: deepFor('taskrules', rules.netns), verify: opts.resync })) r.meshRules++;
      });
    }
    if (!this.cache.holds('hostrules', 'host', plan.hostRules)) await this.applyTarget(r, 'hostrules', 'host', plan.hostRules, async () => {
      if (await this.a.mesh.applyHost(plan.hostRules, { resync: deep, verify: opts.resync })) r.meshRules++;
    });
    // ip6tables only once the ingress is dual stack (then until the rules are gone): v4-only nodes never fork it.
    const applyHost6 = this.a.mesh.applyHost6;
    if (applyHost6 && (plan.hostRules6 || this.cache.get('hostrules', 'host6'))) {
      if (!this.cache.holds('hostrules', 'host6', plan.hostRules6 ?? null)) await this.applyTarget(r, 'hostrules', 'host6', plan.hostRules6 ?? null, async () => {
        if (await applyHost6(plan.hostRules6 ?? null, { resync: deep, verify: opts.resync })) r.meshRules++;
      });
    }
    if (!this.cache.holds('health', 'host', plan.health)) await this.applyTarget(r, 'health', 'host', plan.health, async () => {
      r.health += await this.a.health.reconcile(plan.health);
    });

    for (const p of plan.processes) {
      // The supervisor restarts a process that exits; the agent only starts what it does not know.
      const known = this.a.processes.has(p.taskId);
      if (!known) this.cache.forget('process', p.taskId);
      if (!this.cache.holds('process', p.taskId, p)) await this.applyTarget(r, 'process', p.taskId, p, async () => {
        await this.a.processes.ensureRunning(this.taskSpec(p));
        if (!known) r.processes++;
      });
    }

    await this.removeUnwanted(plan, r, sboxPath);
    // Pruning lists every leg and namespace: on deep resyncs only.
    if (deep) await this.prune(plan, r);
    return r;
  }

  private taskSpec(p: ProcessPlan): TaskSpec {
    return {
      taskId: p.taskId,
      netnsPath: p.netnsPath,
      command: p.command,
      env: p.env,
      resolvConf: this.opts.resolvConf,
      hostname: p.hostname,
      ...(p.user !== undefined ? { user: p.user } : {}),
      ...(p.capAdd ? { capAdd: p.capAdd } : {}),
      ...(p.capDrop ? { capDrop: p.capDrop } : {}),
      ...lifecycleFields(p),
    };
  }

  /**
   * Applies one target unless it already holds `value`; a failure is recorded for the target, logged
   * when it starts or changes (then every 30 s while it lasts) and the pass goes on.
   */
  /**
   * Applies one target; callers first ask the cache whether it already holds the value. The check sits at
   * each call site, not in here: a no-op pass asks it of every target (about a thousand at 100 tasks), and
   * the closure, promise and await made for each before the check were most of what such a pass allocated.
   */
  private async applyTarget(r: PassReport, surface: Surface, name: string, value: unknown, fn: () => Promise<unknown>, opts: { byIdentity?: boolean } = BY_CONTENT): Promise<void> {
    const before = this.explain ? { value: this.cache.get<unknown>(surface, name), changes: reportChanges(r) } : null;
    try {
      await fn();
      const wasFailing = this.cache.failing(surface, name);
      this.cache.record(surface, name, value, opts);
      if (wasFailing) this.opts.log.info({ event: 'reconcile.target_recovered', surface, target: name });
      if (before && this.explain && reportChanges(r) > before.changes) {
        const reason: ApplyReason = wasFailing ? 'retry' : before.value !== undefined ? 'changed' : this.explain.resync ? 'resync' : 'new';
        const what = reason === 'changed' ? explainChange(before.value, value) : undefined;
        this.opts.log.debug({ event: 'reconcile.target_changed', surface, target: name, reason, changes: reportChanges(r) - before.changes, ...(what ? { what } : {}) });
      }
    } catch (err) {
      const message = (err as Error).message;
      r.errors.push(`${surface} ${name}: ${message}`);
      const { first } = this.cache.fail(surface, name, message);
      const k = `${surface}\0${name}`;
      const last = this.lastLogged.get(k) ?? 0;
      if (first || Date.now() - last >= 30_000) {
        this.opts.log.error({ event: 'reconcile.target_failed', surface, target: name, error: message });
        this.lastLogged.set(k, Date.now());
      }
    }
  }

  /** Takes away, in a normal pass, what this reconciler applied earlier and the plan no longer holds. */
  private async removeUnwanted(plan: NodePlan, r: PassReport, sboxPath: string): Promise<void> {
    // Processes first: a task leaves the tables before its process and namespace go.
    const keep = new Set<string>();
    const planned = new Set<string>();
    for (const t of plan.tasks) {
      planned.add(t.record.id);
      if (!t.external) keep.add(t.record.id);
    }
    const processes = this.a.processes.list();
    let stopsTried = false;
    for (const info of processes) {
      if (keep.has(info.taskId)) continue;
      stopsTried = true;
      try {
        await this.a.processes.stop(info.taskId, { graceMs: this.opts.stopGraceMs ?? 5000 });
        this.cache.forget('process', info.taskId);
        this.gwAddresses.delete(info.taskId);
        r.removed++;
        this.explainRemoval('process', info.taskId, 'its task is no longer planned on this node');
      } catch (err) {
        // A task that will not stop is reported; the rest of the node still converges.
        r.errors.push(`process ${info.taskId}: ${(err as Error).message}`);
        const { first } = this.cache.fail('process', info.taskId, (err as Error).message);
        if (first) this.opts.log.error({ event: 'task.stop_failed', task: info.taskId, error: (err as Error).message });
      }
    }
    for (const id of this.gwAddresses.keys()) if (!planned.has(id)) this.gwAddresses.delete(id);

    const wantedDns = new Set(plan.nameViews.map((v) => v.sandbox));
    for (const sandbox of [...this.dnsAttached]) {
      if (wantedDns.has(sandbox)) continue;
      await this.detachDns(sandbox);
      r.removed++;
      this.explainRemoval('dns', sandbox, 'no planned task namespace wants a resolver there');
    }
    const wantedLb = new Set(plan.lbTables.map((t) => t.netns));
    for (const netns of this.cache.targets('lb')) {
      if (wantedLb.has(netns)) continue;
      // The sandbox keeps its (empty) table when the ingress goes; a task's table goes with its namespace.
      if (netns === sboxPath) continue;
      this.closeLb(netns);
      this.cache.forget('lb', netns);
    }
    const wantedRules = new Set(plan.taskRules.map((t) => t.netns));
    for (const netns of this.cache.targets('taskrules')) {
      if (wantedRules.has(netns)) continue;
      this.a.mesh.forgetTask(netns);
      this.cache.forget('taskrules', netns);
    }
    const wantedLegs = new Set(plan.gwLegs.map((l) => l.hostIf));
    for (const hostIf of this.cache.targets('gwleg')) {
      if (wantedLegs.has(hostIf)) continue;
      await this.a.gw.removeLeg(hostIf).catch(() => undefined);
      this.cache.forget('gwleg', hostIf);
      r.removed++;
      this.explainRemoval('gwleg', hostIf, 'its task is no longer planned on this node');
    }
    const wantedNs = new Set(plan.namespaces);
    // Listed again only when a stop was tried above (a stopped task frees its namespace, one that would not stop keeps it).
    const inUse = new Set((stopsTried ? this.a.processes.list() : processes).map((p) => p.netnsPath));
    for (const name of this.cache.targets('namespace')) {
      if (name === '(bridge)' || wantedNs.has(name)) continue;
      // A task that would not stop keeps its namespace until it does.
      if (inUse.has(this.a.namespaces.path(name))) continue;
      try {
        this.deleteNamespace(name);
        r.removed++;
        this.explainRemoval('namespace', name, 'no longer planned on this node');
      } catch (err) {
        r.errors.push(`namespace ${name}: ${(err as Error).message}`);
      }
    }
  }

  /** Removes what meshnet made on this node but nothing wants: legs, namespaces (tasks, overlays, sandbox). */
  private async prune(plan: NodePlan, r: PassReport): Promise<void> {
    try {
      const keepLegs = new Set(plan.gwLegs.map((l) => l.hostIf));
      for (const leg of await this.a.gw.legs()) {
        if (OWN_LEG.test(leg) && !keepLegs.has(leg)) {
          await this.a.gw.removeLeg(leg);
          r.pruned++;
          this.explainRemoval('gwleg', leg, 'pruned: meshnet made it and no plan wants it');
        }
      }
      const keepNs = new Set(plan.namespaces);
      for (const o of plan.overlays) keepNs.add(overlayNetnsName(o.network.name));
      const running = new Set(this.a.processes.list().map((p) => p.netnsPath));
      for (const name of this.a.namespaces.list()) {
        if (!OWN_NETNS.test(name) || keepNs.has(name)) continue;
        // A process still draining in it keeps its namespace until it stops.
        if (running.has(this.a.namespaces.path(name))) continue;
        this.deleteNamespace(name);
        r.pruned++;
        this.explainRemoval('namespace', name, 'pruned: meshnet made it and no plan wants it');
      }
    } catch (err) {
      r.errors.push(`prune: ${(err as Error).message}`);
      this.opts.log.error({ event: 'reconcile.prune_failed', error: (err as Error).message });
    }
  }

  /** One debug line for a target taken away, when this pass explains itself. */
  private explainRemoval(surface: Surface, target: string, why: string): void {
    if (this.explain) this.opts.log.debug({ event: 'reconcile.target_removed', surface, target, why });
  }

  private deleteNamespace(name: string): void {
    const path = this.a.namespaces.path(name);
    if (this.dnsAttached.has(path)) void this.detachDns(path);
    this.closeLb(path);
    this.cache.forget('lb', path);
    this.a.mesh.forgetTask(path);
    this.cache.forget('taskrules', path);
    if (this.a.namespaces.exists(name)) this.a.namespaces.delete(name);
    this.cache.forget('namespace', name);
  }

  private async detachDns(sandbox: string): Promise<void> {
    this.dnsAttached.delete(sandbox);
    this.cache.forget('dns', sandbox);
    this.cache.forget('dnsnat', sandbox);
    await this.a.dns.detach(sandbox).catch((err: Error) => this.opts.log.warn({ event: 'dns.detach_failed', sandbox, error: err.message }));
  }

  private lbOf(netns: string): ReturnType<NodeAdapters['lbFor']> {
    let lb = this.lbs.get(netns);
    if (!lb) {
      lb = this.a.lbFor(netns);
      this.lbs.set(netns, lb);
    }
    return lb;
  }

  private closeLb(netns: string): void {
    this.lbs.get(netns)?.close?.();
    this.lbs.delete(netns);
  }

  /** Releases sockets and sessions held by the reconciler and its backends; the kernel state stays. */
  close(): void {
    for (const netns of [...this.lbs.keys()]) this.closeLb(netns);
    this.a.close();
  }
}
