import type { Cluster } from '../model/cluster.js';
import { CliError, EXIT } from './cli-context.js';

/**
 * Waits until `service` has exactly `replicas` running tasks and no others, printing progress
 * (one updating line on a terminal, a line per change otherwise). Throws CliError (exit 3) on timeout.
 */
export async function waitForService(cluster: Cluster, service: string, replicas: number, timeoutSeconds: number): Promise<void> {
  const tty = process.stderr.isTTY;
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const tasks = await cluster.listTasks({ service });
    const running = tasks.filter((t) => t.state === 'running' && t.desiredState === 'running').length;
    const failed = tasks.filter((t) => t.state === 'failed');
    const extra = tasks.filter((t) => t.desiredState !== 'running').length;
    const line = `${service}: ${running}/${replicas} running${extra ? `, ${extra} stopping` : ''}${failed.length ? `, ${failed.length} failed` : ''}`;
    if (line !== last) {
      process.stderr.write(tty ? `\r${line.padEnd(60)}` : `${line}\n`);
      last = line;
    }
    if (running === replicas && tasks.length === replicas) {
      if (tty) process.stderr.write('\n');
      return;
    }
    if (failed.length > 0 && failed.length + running >= replicas) {
      if (tty) process.stderr.write('\n');
      const why = failed.map((t) => `${t.service}.${t.slot} on ${t.node}: ${t.message ?? 'failed'}`).join('; ');
      throw new CliError(`${service} has failed tasks: ${why}; see meshnet task ls and the task logs`, EXIT.failed);
    }
    if (Date.now() > deadline) {
      if (tty) process.stderr.write('\n');
      throw new CliError(`${service} did not converge within ${timeoutSeconds}s (${line}); are agents running? see meshnet node ls`, EXIT.timeout);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
