import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import type { Lab, LabHost } from './lab.js';
import { openStore } from '../store/open-store.js';
import { Cluster } from '../model/cluster.js';
import type { KvStore } from '../store/kv-store.js';

// Under vitest this file is src/lab/*.ts and the compiled tree is <repo>/dist; compiled, it is dist/src/lab/*.js.
const self = fileURLToPath(import.meta.url);
/** Root of the compiled tree (dist/), where lab programs run from even under vitest. */
export const compiledRoot = self.endsWith('.ts') ? join(resolve(dirname(self), '../..'), 'dist') : resolve(dirname(self), '../..');

/** The compiled CLI entry point. */
export const CLI_PATH = join(compiledRoot, 'src/cli/main.js');
/** The demo's HTTP echo app. */
export const ECHO_HTTP = join(compiledRoot, 'src/tasks/apps/echo-http.js');
/** The demo's UDP echo app. */
export const ECHO_UDP = join(compiledRoot, 'src/tasks/apps/echo-udp.js');

/** A running agent process on a lab host. */
export interface LabAgent {
  host: LabHost;
  process: ChildProcess;
  log: string;
}

/**
 * Real `meshnet agent` processes, one inside each lab host's namespace, sharing an embedded store
 * file: what the demo runs and what the end-to-end tests drive.
 */
export class ClusterLab {
  readonly store: string;
  readonly agents = new Map<string, LabAgent>();

  constructor(
    readonly lab: Lab,
    readonly extraAgentArgs: string[] = [],
  ) {
    this.store = `sqlite:${lab.root}/state.db`;
  }

  /** Starts the agent of `host` (detached, so it outlives a crashed test runner only until lab teardown). */
  startAgent(host: LabHost): LabAgent {
    const dir = `${this.lab.root}/${host.name}`;
    mkdirSync(dir, { recursive: true });
    const log = `${dir}/agent.log`;
    const fd = openSync(log, 'a');
    const child = spawn(
      'nsenter',
      [`--net=${host.netns}`, '--', process.execPath, CLI_PATH, '--store', this.store, 'agent', '--name', host.name, '--advertise-addr', host.underlayIp, '--netns-dir', host.dir.dir, '--state-dir', `${dir}/state`, ...this.extraAgentArgs],
      // As deploy/meshnet-agent.service starts it: glibc reads the arena cap only at exec.
      { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] ?? '2' } },
    );
    closeSync(fd);
    child.unref();
    const agent = { host, process: child, log };
    this.agents.set(host.name, agent);
    return agent;
  }

  /** Starts every host's agent and waits until all nodes are registered. */
  async startAll(timeoutMs = 60_000): Promise<void> {
    for (const h of this.lab.hosts) this.startAgent(h);
    await this.waitFor(`${this.lab.hosts.length} nodes`, timeoutMs, async (c) => (await c.listNodes()).length === this.lab.hosts.length);
  }

  /** Stops an agent: SIGTERM keeps its node registered until the lease ends; SIGKILL is a crash. */
  async stopAgent(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const a = this.agents.get(name);
    if (!a) return;
    if (a.process.exitCode === null && a.process.signalCode === null) {
      const exited = new Promise<void>((r) => a.process.once('exit', () => r()));
      a.process.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    }
    this.agents.delete(name);
  }

  /** Runs the meshnet CLI against this cluster's store. */
  cli(args: string[], timeoutMs = 180_000): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [CLI_PATH, '--store', this.store, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Runs the meshnet CLI without blocking this process (needed while the store may hang); killed after `timeoutMs`. */
  cliAsync(args: string[], timeoutMs = 180_000): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
    const started = Date.now();
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI_PATH, '--store', this.store, ...args], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 128) : 0;
        resolve({ code, stdout, stderr: err?.killed ? `${stderr}\nkilled after ${timeoutMs} ms` : stderr, ms: Date.now() - started });
      });
    });
  }

  /** Opens the store and runs `fn` on the cluster model. */
  async withCluster<T>(fn: (c: Cluster, s: KvStore) => Promise<T>): Promise<T> {
    const s = await openStore(this.store);
    try {
      return await fn(new Cluster(s), s);
    } finally {
      await s.close();
    }
  }

  /** Polls `check` until it is true or the time is up (then throws naming `what`). */
  async waitFor(what: string, timeoutMs: number, check: (c: Cluster) => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.withCluster(check)) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.logTails(8)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The last lines of every agent's log, for failure messages (the lab and its logs go at teardown). */
  logTails(lines: number): string {
    return this.lab.hosts
      .map((h) => {
        const log = `${this.lab.root}/${h.name}/agent.log`;
        const text = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-lines).join('\n') : '(no log)';
        return `--- ${h.name} agent log ---\n${text}`;
      })
      .join('\n');
  }

  /** Builds a lab of `hosts` hosts with real agents started, runs `fn`, and always tears it all down. */
  static async within<T>(hosts: number, tag: string, agentArgs: string[], fn: (cl: ClusterLab, lab: Lab) => Promise<T>): Promise<T> {
    const { Lab: LabClass } = await import('./lab.js');
    const lab = await LabClass.create(hosts, { tag });
    const cl = new ClusterLab(lab, agentArgs);
    try {
      return await fn(cl, lab);
    } finally {
      await cl.stopAll();
      await lab.destroy();
    }
  }

  /** Stops every agent (SIGKILL: teardown, not a graceful exit). */
  async stopAll(): Promise<void> {
    for (const name of [...this.agents.keys()]) await this.stopAgent(name, 'SIGKILL');
  }
}
