import { spawn, type SpawnOptions, type ChildProcess } from 'node:child_process';
import { SandboxError } from './errors.js';

/** A command's outcome. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** A command failed; `stderr` is kept so the operator sees the tool's own words. */
export class CommandFailedError extends SandboxError {
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
    netns: string | null,
  ) {
    super(
      'COMMAND_FAILED',
      `${argv.join(' ')}${netns ? ` (in ${netns})` : ''} exited with ${result.code}: ${result.stderr.trim().slice(0, 2000) || result.stdout.trim().slice(0, 500)}`,
    );
  }
}

export interface ExecOptions {
  /** Written to the command's stdin (for `nft -f -`, `iptables-restore`). */
  input?: string;
  /** Kill the command after this long. */
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

let spawned = 0;

/** Processes started through this module since the process began: the agent logs it per pass, so a fork on an idle pass shows. */
export function processesSpawned(): number {
  return spawned;
}

/** Counts a process started elsewhere (the resolver's socket keeper) in processesSpawned. */
export function noteProcessSpawned(): void {
  spawned++;
}

/** argv prefixed so that it runs inside `netns` (a namespace file path); null runs it here. */
export function argvIn(netns: string | null, argv: readonly string[]): string[] {
  return netns ? ['nsenter', `--net=${netns}`, '--', ...argv] : [...argv];
}

/** Runs a command inside a namespace and collects its output; throws CommandFailedError on failure. */
export function execIn(netns: string | null, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const full = argvIn(netns, argv);
  spawned++;
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new SandboxError('COMMAND_NOT_STARTED', `cannot run ${full[0]}: ${e.message}; is it installed? (scripts/setup installs it)`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? `\nkilled by ${signal}` : ''),
        code: code ?? 128,
      };
      if (result.code !== 0 && !opts.allowFailure) reject(new CommandFailedError(argv, result, netns));
      else resolve(result);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Starts a long-running process inside a namespace (a task, a server); the caller owns it. */
export function spawnIn(netns: string | null, argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const full = argvIn(netns, argv);
  spawned++;
  return spawn(full[0]!, full.slice(1), options);
}
