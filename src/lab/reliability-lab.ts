import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { execIn } from '../sandbox/exec.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { ClusterLab, ECHO_HTTP } from './cluster-lab.js';
import { killProcessesIn, Lab, type LabHost } from './lab.js';
import { startProbe, type ProbeRun } from './probe-run.js';
import { taskNetnsName } from '../agent/node-plan.js';
import type { TaskFingerprint } from './task-fingerprint.js';
import { digestAgentLog, formatDigest } from './agent-log-digest.js';

/** A published service of the reliability lab. */
export interface LabService {
  name: string;
  port: number;
  replicas: number;
  /** Extra arguments of the echo app (`--host ::` listens dual-stack, as Node's `listen(port)` does). */
  appArgs: string[];
}

/**
 * The services every scenario probes: `web` for the faults of a host or of the store, `uf` alone for
 * the unknown-field record (so a mishandled record cannot take `web` down with it), and `dual`, the same
 * echo server listening on `::` like most real servers, for one task-kill run.
 */
export const LAB_SERVICES = {
  web: { name: 'web', port: 8000, replicas: 3, appArgs: [] },
  uf: { name: 'uf', port: 8001, replicas: 3, appArgs: [] },
  dual: { name: 'dual', port: 8003, replicas: 3, appArgs: ['--host', '::'] },
} as const satisfies Record<string, LabService>;

const CLIENT_IP = '192.0.2.100';

/** Byte offsets into each agent log, so a scenario reads only what was logged during it. */
export type LogMarks = Map<string, number>;

/**
 * Three lab hosts with real agents (lease TTL `leaseTtlSeconds`) on one SQLite store, an outside client,
 * and the LAB_SERVICES: the stage every reliability scenario runs on, shared by the test and the bench.
 */
export class ReliabilityLab {
  /** Hosts that still run (node loss takes one away). */
  readonly live: LabHost[];

  private constructor(
    readonly lab: Lab,
    readonly cluster: ClusterLab,
    readonly client: string,
    readonly leaseTtlSeconds: number,
    readonly log: Logger,
    /** A folder to write each scenario's raw probe report to (the bench's --keep-reports). */
    readonly keepReportsIn: string | undefined,
  ) {
    this.live = [...lab.hosts];
  }

  /** Builds the lab, starts the agents and creates the services without waiting for them. */
  static async create(log: Logger, opts: { leaseTtlSeconds?: number; keepReportsIn?: string } = {}): Promise<ReliabilityLab> {
    const ttl = opts.leaseTtlSeconds ?? 10;
    const lab = await Lab.create(3, { tag: 'reliability' });
    try {
      const client = await lab.addClient('client', CLIENT_IP);
      const cluster = new ClusterLab(lab, ['--lease-ttl', String(ttl), '--drain-seconds', '2']);
      await cluster.startAll();
      for (const s of Object.values(LAB_SERVICES)) {
        const r = await cluster.cliAsync(['service', 'create', '--name', s.name, '--replicas', String(s.replicas), '-p', `${s.port}:80`, '-d', '--', process.execPath, ECHO_HTTP, '--port', '80', ...s.appArgs], 60_000);
        if (r.code !== 0) throw new Error(`service create ${s.name} failed (exit ${r.code}): ${r.stderr.trim()}`);
      }
      log.info({ event: 'reliability.lab_ready', root: lab.root, leaseTtlSeconds: ttl });
      return new ReliabilityLab(lab, cluster, client, ttl, log, opts.keepReportsIn);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
  }

  /** The SQLite file of the store. */
  get dbFile(): string {
    return `${this.lab.root}/state.db`;
  }

  /** The lab host called `name`. */
  host(name: string): LabHost {
    const h = this.lab.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no lab host ${name}: the lab has ${this.lab.hosts.map((x) => x.name).join(', ')}`);
    return h;
  }

  /** Starts a probe from the client through `port` published on host-a; it ends by itself after `maxMs`. */
  probe(port: number, maxMs: number): ProbeRun {
    return startProbe(this.lab, this.client, { target: `${this.lab.hosts[0]!.underlayIp}:${port}`, maxMs, intervalMs: 20, timeoutMs: 1000 });
  }

  /**
   * Starts a probe of the resolver inside the namespace of task `id` on `node` (127.0.0.11:53, a new UDP socket a
   * query, a stub resolver's 5 s timeout); it ends by itself after `maxMs`.
   */
  dnsProbe(node: string, id: string, maxMs: number): ProbeRun {
    return startProbe(this.lab, `${this.host(node).dir.dir}/${taskNetnsName(id)}`, { target: '127.0.0.11:53', maxMs, intervalMs: 20, timeoutMs: 5000, dns: true });
  }

  /** The tasks of `services` as they run now: store record plus the pid the agent keeps for each. */
  async fingerprints(services: readonly string[]): Promise<TaskFingerprint[]> {
    const tasks = await this.cluster.withCluster(async (c) => (await c.listTasks()).filter((t) => services.includes(t.service)));
    return tasks.map((t) => ({ service: t.service, slot: t.slot, id: t.id, node: t.node, pid: this.pidOf(t.node, t.id), restarts: t.restarts, state: t.state }));
  }

  /** The process id of task `id` on `node`, from the agent's state folder. */
  pidOf(node: string, id: string): number | null {
    const file = `${this.lab.root}/${node}/state/tasks/${id}/pid`;
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  /**
   * Waits until every live host is registered, each service runs all its replicas on live hosts, and
   * each service's port answers on every live host: the state a scenario starts from.
   */
  async waitHealthy(services: readonly LabService[], timeoutMs = 45_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = '';
    for (;;) {
      why = await this.unhealthy(services);
      if (why === '') return;
      if (Date.now() > deadline) throw new Error(`the lab did not reach its starting state within ${timeoutMs} ms: ${why}\n${this.cluster.logTails(6)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  private async unhealthy(services: readonly LabService[]): Promise<string> {
    const liveNames = new Set(this.live.map((h) => h.name));
    const { nodes, tasks } = await this.cluster.withCluster(async (c) => ({ nodes: await c.listNodes(), tasks: await c.listTasks() }));
    const registered = new Set(nodes.map((n) => n.id));
    const missing = [...liveNames].filter((n) => !registered.has(n));
    if (missing.length > 0) return `nodes not registered: ${missing.join(', ')}`;
    for (const s of services) {
      const mine = tasks.filter((t) => t.service === s.name);
      const running = mine.filter((t) => t.state === 'running' && t.desiredState === 'running' && liveNames.has(t.node));
      if (running.length !== s.replicas || mine.length !== s.replicas) {
        return `${s.name}: ${running.length}/${s.replicas} running (${mine.map((t) => `${t.slot}@${t.node}=${t.state}/${t.desiredState}`).join(' ') || 'no tasks'})`;
      }
    }
    for (const s of services) {
      const silent = await this.hostsNotAnswering(s.port);
      if (silent.length > 0) return `${s.name}: port ${s.port} does not answer on ${silent.join(', ')}`;
    }
    return '';
  }

  /** The live hosts on which `port` does not answer HTTP 200 to the client now. */
  async hostsNotAnswering(port: number): Promise<string[]> {
    const silent: string[] = [];
    for (const h of this.live) {
      const r = await execIn(this.client, ['curl', '-s', '-m', '1', '-o', '/dev/null', '-w', '%{http_code}', `http://${h.underlayIp}:${port}/`], { allowFailure: true, timeoutMs: 5000 });
      if (r.stdout !== '200') silent.push(h.name);
    }
    return silent;
  }

  /** Polls `check` every 250 ms until it returns true; false when `timeoutMs` passed first. */
  async until(timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return true;
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The lease id of `node`'s record in the store, or undefined when it has none. */
  async nodeLease(node: string): Promise<string | undefined> {
    return this.cluster.withCluster(async (c) => (await c.getNode(node))?.lease);
  }

  /** Current sizes of the agent logs. */
  logMarks(): LogMarks {
    const marks: LogMarks = new Map();
    for (const h of this.lab.hosts) {
      const file = this.agentLog(h.name);
      marks.set(h.name, existsSync(file) ? statSync(file).size : 0);
    }
    return marks;
  }

  /** Per host, a one-line digest of what its agent logged since `marks`. */
  logDigests(marks: LogMarks): Record<string, string> {
    const out: Record<string, string> = {};
    for (const h of this.lab.hosts) {
      const file = this.agentLog(h.name);
      const text = existsSync(file) ? readFileSync(file).subarray(marks.get(h.name) ?? 0).toString('utf8') : '';
      out[h.name] = formatDigest(digestAgentLog(text));
    }
    return out;
  }

  /** True once `host`'s agent has logged `event` after `marks` (polled); false after `timeoutMs`. */
  async waitForLogEvent(host: string, event: string, marks: LogMarks, timeoutMs: number): Promise<boolean> {
    const file = this.agentLog(host);
    const needle = `"event":"${event}"`;
    return this.until(timeoutMs, () => existsSync(file) && readFileSync(file).subarray(marks.get(host) ?? 0).toString('utf8').includes(needle));
  }

  /** True when `host`'s agent process (the one this lab started last) is alive. */
  agentAlive(host: string): boolean {
    const a = this.cluster.agents.get(host);
    return !!a && a.process.exitCode === null && a.process.signalCode === null;
  }

  private agentLog(host: string): string {
    return `${this.lab.root}/${host}/agent.log`;
  }

  /** Stops host `name`'s agent with `signal` and starts a new one; resolves once the old one has exited. */
  async restartAgent(name: string, signal: NodeJS.Signals): Promise<void> {
    await this.cluster.stopAgent(name, signal);
    this.cluster.startAgent(this.host(name));
  }

  /**
   * Restarts every live agent gracefully and waits for each to start: after a failed scenario, so an
   * agent left in a bad state (a hot loop, a lost registration) does not fail the next scenario too.
   */
  async freshAgents(): Promise<void> {
    for (const h of this.live) {
      const marks = this.logMarks();
      await this.restartAgent(h.name, 'SIGTERM');
      if (!(await this.waitForLogEvent(h.name, 'agent.started', marks, 30_000))) throw new Error(`the agent of ${h.name} did not start again within 30 s\n${this.cluster.logTails(6)}`);
    }
    this.log.info({ event: 'reliability.agents_restarted', hosts: this.live.map((h) => h.name) });
  }

  /** A node dies: its agent and every process in its namespaces are SIGKILLed and its underlay link goes down. */
  async killNode(name: string): Promise<number> {
    const h = this.host(name);
    const agent = this.cluster.agents.get(name);
    agent?.process.kill('SIGKILL');
    const killed = killProcessesIn([h.netns, ...h.dir.list().map((n) => h.dir.path(n))]);
    const r = Rtnl.open(h.netns);
    try {
      await r.setLink('eth0', { up: false });
    } finally {
      r.close();
    }
    await this.cluster.stopAgent(name, 'SIGKILL');
    this.live.splice(this.live.indexOf(h), 1);
    this.log.info({ event: 'reliability.node_killed', node: name, processes: killed });
    return killed;
  }

  /** Stops the agents and removes every namespace and file of the lab. */
  async destroy(): Promise<void> {
    await this.cluster.stopAll();
    await this.lab.destroy();
  }
}
