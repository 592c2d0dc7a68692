import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './lab.js';
import { compiledRoot } from './cluster-lab.js';
import type { ProbeReport } from './probe-outcome.js';

/** The compiled probe program. */
export const PROBE_PATH = join(compiledRoot, 'src/lab/probe-main.js');

/** What a probe should do; it always ends by itself after `maxMs`. */
export interface ProbeOptions {
  /** HOST:PORT, reached from the namespace the probe runs in. */
  target: string;
  maxMs: number;
  intervalMs?: number;
  timeoutMs?: number;
  /** One DNS query on a new UDP socket per attempt instead of an HTTP request on a new connection. */
  dns?: boolean;
}

/** A probe program running in a lab namespace (the lab kills it at teardown). */
export class ProbeRun {
  private stdout = '';
  private stderr = '';
  private attemptsSoFar = 0;
  private readonly waiters = new Set<() => void>();
  /** The report, once the probe has ended. */
  readonly done: Promise<ProbeReport>;

  constructor(private readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      this.stdout += s;
    });
    let partial = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      this.stderr += s;
      const lines = (partial + s).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.readProgress(line);
      for (const w of this.waiters) w();
    });
    this.done = new Promise((resolve, reject) => {
      child.once('exit', (code, signal) => {
        for (const w of this.waiters) w();
        try {
          resolve(JSON.parse(this.stdout) as ProbeReport);
        } catch {
          reject(new Error(`the probe ended (${signal ?? `exit ${code}`}) without a report: ${this.stderr.trim().slice(-500)}`));
        }
      });
    });
    this.done.catch(() => undefined);
  }

  private readProgress(line: string): void {
    try {
      const entry = JSON.parse(line) as { event?: string; attempts?: number };
      if (entry.event === 'probe.progress' && typeof entry.attempts === 'number') this.attemptsSoFar = Math.max(this.attemptsSoFar, entry.attempts);
    } catch {
      // not a log line of ours (a Node warning): kept in stderr for error messages only
    }
  }

  /** Resolves once the probe has reported at least `n` finished attempts (it reports once a second). */
  async waitForAttempts(n: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.attemptsSoFar < n) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`the probe ended before ${n} attempts: ${this.stderr.trim().slice(-500)}`);
      if (Date.now() > deadline) throw new Error(`the probe made ${this.attemptsSoFar} attempts in ${timeoutMs} ms, expected ${n}: ${this.stderr.trim().slice(-500)}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 500);
        this.waiters.add(wake);
      });
    }
  }

  /** Asks the probe to stop (it finishes the attempts in flight) and returns its report. */
  async stop(): Promise<ProbeReport> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.done;
  }
}

/** Starts the probe inside `netns` (an outside client of the cluster). */
export function startProbe(lab: Lab, netns: string, opts: ProbeOptions): ProbeRun {
  const argv = [process.execPath, PROBE_PATH, '--target', opts.target, '--max-ms', String(opts.maxMs)];
  if (opts.intervalMs !== undefined) argv.push('--interval-ms', String(opts.intervalMs));
  if (opts.timeoutMs !== undefined) argv.push('--timeout-ms', String(opts.timeoutMs));
  if (opts.dns) argv.push('--dns');
  return new ProbeRun(lab.spawn(netns, argv));
}
