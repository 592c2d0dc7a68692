/**
 * What the VM scenarios share: printing results between markers on the serial console (the
 * vitest side parses them) and running a command without letting its failure end the run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Prints `body` between "=== BEGIN name ===" and "=== END name ===". */
export function section(name: string, body: string): void {
  process.stdout.write(`=== BEGIN ${name} ===\n${body.trimEnd()}\n=== END ${name} ===\n`);
}

/** Prints a progress marker with the guest's uptime, so the test can report where the time went. */
export function stage(name: string): void {
  process.stdout.write(`=== STAGE ${name} ${readFileSync('/proc/uptime', 'utf8').trim()} ===\n`);
}

/** Runs a command; a failure comes back as text starting with "ERROR", for the section that shows it. */
export function sh(argv: string[], input?: string): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000, input: input ?? '', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return `ERROR ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`;
  }
}
