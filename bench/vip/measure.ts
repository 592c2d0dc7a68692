import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { LbTable } from '../../src/vip/lb-table.js';
import { backendAddress } from './synthetic-table.js';

/** The p-th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Milliseconds as printed by the VIP benches. */
export function fmt(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

/** Rounded for the final JSON line. */
export function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/**
 * Replaces backend `b` of service `s` with a fresh address: one backend out, one in. The new
 * table shares every other service object with `table`, as the agent's tables do.
 */
export function withChange(table: LbTable, s: number, b: number, round: number): LbTable {
  const services = table.services.slice();
  const svc = services[s]!;
  const backends = svc.backends.slice();
  backends[b] = { ...backends[b]!, address: backendAddress(s, 10 + (round % 50)) };
  services[s] = { ...svc, backends };
  return { services };
}

/**
 * The last pid handed out in this process's pid namespace. In a private pid namespace (the benches
 * run themselves under `unshare --pid`) it moves only when this process starts a process or a
 * thread, so its change over a phase is an upper bound on the processes started meanwhile.
 */
export function lastPid(): number {
  return Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
}

/**
 * Re-runs this bench as pid 1 of a private pid namespace (only the pid namespace: the network
 * stays the host's, untouched) so that lastPid() counts only this process's children; returns
 * false in the parent, which should then exit with the child's status.
 */
export function inPrivatePidNamespace(): boolean {
  if (process.pid === 1) return true;
  const r = spawnSync('unshare', ['--pid', '--fork', '--kill-child', process.execPath, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
  return false;
}

/** Lets the event loop turn a few times, so an event-loop delay monitor records a stall that just ended. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 30));
}

/**
 * Runs `fn`, timing it, the CPU this process (every thread) spent on it, and the longest the
 * event loop was kept from turning meanwhile. CPU time says what the work costs when other
 * processes share the cores; wall time says what the caller waited.
 */
export async function timedWithStall<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number; stallMs: number }> {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  await settle(); // the monitor records from its second tick on
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await settle();
  loop.disable();
  return { value, ms, cpuMs: (cpu.user + cpu.system) / 1000, stallMs: loop.max / 1e6 };
}

/** The load average over the last minute and the number of cores, to read the figures by. */
export function machineLoad(): string {
  return `load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`;
}
