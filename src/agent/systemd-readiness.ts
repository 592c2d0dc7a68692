import { execFile } from 'node:child_process';
import type { Logger } from '../log/logger.js';
import type { AgentObserver } from './agent-observer.js';

/** Runs a command; resolves with its exit code (null: it could not start or timed out) and stderr. */
export type CommandRunner = (argv: string[], env: NodeJS.ProcessEnv) => Promise<{ code: number | null; stderr: string }>;

const runCommand: CommandRunner = (argv, env) =>
  new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env, timeout: 5000, encoding: 'utf8' }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stderr: err && code === null ? `${stderr}${err.message}` : stderr });
    });
  });

/**
 * systemd Type=notify readiness: tells systemd READY=1 once the first pass finished, so units
 * ordered After= the agent start when the node's mesh is programmed. Node has no unix datagram
 * sockets, so systemd's own `systemd-notify` sends it; `--pid` names the agent as the sender (as
 * root it may), which NotifyAccess=main accepts. Without NOTIFY_SOCKET (not under systemd, or
 * Type=simple) it does nothing.
 */
export class SystemdReadiness implements AgentObserver {
  private sent = false;

  /**
   * `notifySocket` is NOTIFY_SOCKET as the agent found it (the caller takes it out of the
   * environment, so task processes never inherit it); `pid` is the agent's.
   */
  constructor(
    private readonly notifySocket: string | undefined,
    private readonly pid: number,
    private readonly log: Logger,
    private readonly run: CommandRunner = runCommand,
  ) {}

  started(): void {}

  taskChanged(): void {}

  storeChanged(): void {}

  passFinished(): void {
    if (this.sent || !this.notifySocket) return;
    this.sent = true;
    void this.notify(this.notifySocket);
  }

  private async notify(socket: string): Promise<void> {
    // --no-block: no BARRIER round trip. The barrier guards against systemd-notify exiting before
    // systemd attributes its message; with --pid the message carries the agent's pid, which lives on.
    const argv = ['systemd-notify', '--ready', '--no-block', `--pid=${this.pid}`, '--status=first reconcile pass done'];
    const r = await this.run(argv, { ...process.env, NOTIFY_SOCKET: socket });
    if (r.code === 0) this.log.info({ event: 'systemd.ready_notified', socket });
    else
      this.log.warn({
        event: 'systemd.notify_failed',
        socket,
        error: r.stderr.trim() || `exit ${r.code}`,
        hint: 'install systemd (it provides systemd-notify), or run the unit as Type=simple',
      });
  }
}
