import type { ChildProcess } from 'node:child_process';
import { CLI_PATH } from '../../src/lab/cluster-lab.js';
import type { ExecResult } from '../../src/sandbox/exec.js';
import type { Lab } from '../lab/lab.js';

// Helpers of the store tests that put etcd on one lab host and meshnet on another, so that the store is a real
// non-loopback address and all traffic stays inside the lab's namespaces.

/** Runs the compiled meshnet CLI inside `netns` with exactly `env` (nothing leaks in from the test's environment). */
export function meshnetIn(lab: Lab, netns: string, env: Record<string, string>, args: string[]): Promise<ExecResult> {
  const vars = Object.entries({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }).map(([k, v]) => `${k}=${v}`);
  return lab.exec(netns, ['env', '-i', ...vars, process.execPath, CLI_PATH, ...args], { allowFailure: true, timeoutMs: 60_000 });
}

/** Retries `probe` every 100 ms until it succeeds; throws with its last output after `timeoutMs`. */
export async function waitUntil(what: string, timeoutMs: number, probe: () => Promise<ExecResult>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ExecResult | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (last.code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms: ${last?.stderr ?? ''}`);
}

/** Collects a spawned process's stderr and resolves once a line matches (rejects when it exits first or in time). */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${text}`)), timeoutMs);
    child.stderr?.on('data', (d: Buffer) => {
      text += d.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before a line matched ${pattern}:\n${text}`));
    });
  });
}
