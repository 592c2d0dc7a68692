import type { Cluster } from '../model/cluster.js';
import type { ServiceRecord, TaskRecord } from '../model/records.js';
import { taskVersion } from '../model/rolling-update.js';
import { isGlobal } from '../model/cluster-placement.js';
import { serviceVersion } from '../model/service-update-spec.js';
import { CliError, EXIT } from './cli-context.js';
import { waitTarget } from './placement-status.js';

/**
 * Waits until `service` runs every task placement can place now (`replicas` when its record cannot be read) and
 * no others, printing progress (one updating line on a terminal, a line per change otherwise). Throws CliError
 * (exit 3) on timeout, and as soon as those run when the rest cannot be placed (pending, with the reason).
 */
export async function waitForService(cluster: Cluster, service: string, replicas: number, timeoutSeconds: number): Promise<void> {
  const tty = process.stderr.isTTY;
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const tasks = await cluster.listTasks({ service });
    // Placement says how many tasks can run now (global: one per eligible node; others may wait for a node).
    const target = await waitTarget(cluster, service, tasks);
    const placed = target?.slots.size ?? replicas;
    const running = tasks.filter((t) => t.state === 'running' && t.desiredState === 'running').length;
    const failed = tasks.filter((t) => t.state === 'failed');
    const extra = tasks.filter((t) => t.desiredState !== 'running').length;
    const pending = target && target.pending > 0 ? `, ${target.pending} pending` : '';
    const line = `${service}: ${running}/${target?.desired ?? replicas} running${pending}${extra ? `, ${extra} stopping` : ''}${failed.length ? `, ${failed.length} failed` : ''}`;
    if (line !== last) {
      process.stderr.write(tty ? `\r${line.padEnd(60)}` : `${line}\n`);
      last = line;
    }
    if (running === placed && tasks.length === placed) {
      if (tty) process.stderr.write('\n');
      if (target && target.pending > 0) {
        throw new CliError(`${service}: ${target.text}; pending replicas start when a node fits (see meshnet node ls and meshnet service inspect ${service})`, EXIT.timeout);
      }
      return;
    }
    if (failed.length > 0 && failed.length + running >= placed) {
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

/** One line of rollout progress: state, tasks at the new version and running, failures. */
export function rolloutLine(service: ServiceRecord, tasks: readonly TaskRecord[]): string {
  const version = serviceVersion(service);
  // A global service has no replica count: its tasks' slots are its nodes'.
  const global = isGlobal(service);
  const mine = tasks.filter((t) => t.service === service.name && (global || t.slot <= service.replicas) && !t.external);
  const total = global ? new Set(mine.map((t) => t.slot)).size : service.replicas;
  const updated = mine.filter((t) => taskVersion(t) === version && t.state === 'running' && t.desiredState === 'running').length;
  const draining = mine.filter((t) => t.desiredState !== 'running').length;
  const failed = service.updateStatus?.failedTasks?.length ?? 0;
  const state = service.updateStatus?.state ?? 'completed';
  return `${service.name}: ${state.replace('_', ' ')}, ${updated}/${total} tasks at version ${version} running${draining ? `, ${draining} draining` : ''}${failed ? `, ${failed} failed` : ''}`;
}

/**
 * Waits until the rollout of `name` completes (updated or rolled back), printing progress as waitForService
 * does. Exit 1 when it pauses or is rolled back after a failure (the status message says why), 3 on timeout.
 */
export async function waitForRollout(cluster: Cluster, name: string, timeoutSeconds: number): Promise<void> {
  const tty = process.stderr.isTTY;
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last = '';
  let rolledBack = false;
  const end = () => tty && process.stderr.write('\n');
  for (;;) {
    const [service, tasks] = await Promise.all([cluster.getService(name), cluster.listTasks({ service: name })]);
    if (!service) throw new CliError(`service ${name} was removed during the update`, EXIT.failed);
    const line = rolloutLine(service, tasks);
    if (line !== last) {
      process.stderr.write(tty ? `\r${line.padEnd(72)}` : `${line}\n`);
      last = line;
    }
    const status = service.updateStatus;
    if (status?.state === 'rollback_started' && status.message !== 'manually requested rollback') rolledBack = true;
    if (status === undefined || status.state === 'completed' || status.state === 'rollback_completed') {
      end();
      if (rolledBack) throw new CliError(`${name}: ${status?.message ?? 'rolled back'}; the update was rolled back after a failure: see meshnet service inspect ${name}`, EXIT.failed);
      return;
    }
    if (status.state === 'paused' || status.state === 'rollback_paused') {
      end();
      throw new CliError(`${name}: ${status.message}; fix the cause and run meshnet service update ${name} to resume, or meshnet service rollback ${name}`, EXIT.failed);
    }
    if (Date.now() > deadline) {
      end();
      throw new CliError(`${name} did not finish its rollout within ${timeoutSeconds}s (${line}); see meshnet service inspect ${name}`, EXIT.timeout);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
