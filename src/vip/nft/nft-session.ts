import type { ChildProcess } from 'node:child_process';
import { spawnIn } from '../../sandbox/exec.js';
import { NftBackendError } from './errors.js';

/** A command the session could not run: `message` is nft's own error text. */
export class NftSessionError extends NftBackendError {
  constructor(
    readonly nftMessage: string,
    kind: 'rejected' | 'died' | 'timeout',
  ) {
    super(kind === 'rejected' ? 'NFT_REJECTED' : kind === 'died' ? 'NFT_SESSION_DIED' : 'NFT_SESSION_TIMEOUT', nftMessage);
  }
}

/**
 * A long-lived `nft -i` inside one namespace. Starting `nft` costs 60-80 ms here (more than the
 * whole 50 ms budget for a change); a warm session applies a one-backend change in 2-4 ms at
 * 10,000 services. Each transaction is written as ONE line (commands joined by ';'), which nft
 * parses as one buffer and commits as one batch, so it stays atomic. nft -i prints nothing on
 * success, so every line is followed by a marker command that fails on purpose; everything on
 * stderr before the marker's error belongs to the transaction.
 */
export class NftSession {
  private child: ChildProcess | null = null;
  private stderr = '';
  private waiter: (() => void) | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;

  constructor(
    private readonly netns: string | null,
    private readonly timeoutMs = 10_000,
  ) {}

  private start(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    const child = spawnIn(this.netns, ['nft', '-i'], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      this.stderr += d;
      this.waiter?.();
    });
    child.on('exit', () => {
      if (this.child === child) this.child = null;
      this.waiter?.();
    });
    child.on('error', () => undefined);
    child.stdin!.on('error', () => undefined);
    this.child = child;
    return child;
  }

  /** Runs `script` (newline-separated commands) as one atomic transaction; throws NftSessionError. */
  run(script: string, warming = false): Promise<void> {
    const next = this.queue.then(() => this.runNow(script, warming));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Starts nft and lets it load its cache now, so the first real change does not pay for it. */
  warm(): Promise<void> {
    return this.run('', true);
  }

  private runNow(script: string, warming = false): Promise<void> {
    const line = script
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join('; ');
    if (!line && !warming) return Promise.resolve();
    const child = this.start();
    const marker = `meshnet-sync-${process.pid}-${++this.seq}`;
    const markerLine = `list table ip ${marker}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new NftSessionError(`nft -i gave no answer within ${this.timeoutMs} ms`, 'timeout'), true), this.timeoutMs);
      const finish = (err: Error | null, kill = false) => {
        clearTimeout(timer);
        this.waiter = null;
        if (kill) child.kill('SIGKILL');
        if (err) reject(err);
        else resolve();
      };
      this.waiter = () => {
        const at = this.stderr.indexOf(markerLine);
        if (at >= 0) {
          // The marker's own report is "Error: ...\n<markerLine>\n<carets>\n": wait for the carets line.
          const lineEnd = this.stderr.indexOf('\n', at + markerLine.length + 1);
          if (lineEnd < 0) return;
          const errorStart = this.stderr.lastIndexOf('Error:', at);
          const before = this.stderr.slice(0, errorStart < 0 ? at : errorStart);
          this.stderr = this.stderr.slice(lineEnd + 1);
          finish(before.includes('Error') ? new NftSessionError(before.trim(), 'rejected') : null);
        } else if (!this.child || this.child !== child) {
          finish(new NftSessionError(`nft -i exited: ${this.stderr.trim().slice(0, 500)}`, 'died'));
        }
      };
      child.stdin!.write(line ? `${line}\n${markerLine}\n` : `${markerLine}\n`);
    });
  }

  /** Ends the nft process. */
  close(): void {
    this.child?.stdin?.end();
    this.child?.kill();
    this.child = null;
  }
}
