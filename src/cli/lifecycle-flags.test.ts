import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { CliError, EXIT } from './cli-context.js';
import { addLifecycleFlags, lifecycleFromFlags, type LifecycleFlags } from './lifecycle-flags.js';

/** The flags as commander parses them from argv. */
function flags(...argv: string[]): LifecycleFlags {
  const cmd = addLifecycleFlags(new Command('create').exitOverride());
  cmd.parse(argv, { from: 'user' });
  return cmd.opts() as LifecycleFlags;
}

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.usage);
    return (err as CliError).message;
  }
  throw new Error('no error');
}

describe('lifecycleFromFlags on create', () => {
  it('gives nothing without flags: the service keeps meshnet\'s behaviour', () => {
    expect(lifecycleFromFlags(flags())).toEqual({});
  });

  it('fills Docker\'s defaults around --health-cmd', () => {
    expect(lifecycleFromFlags(flags('--health-cmd', 'test -f /tmp/ok'))).toEqual({
      healthcheck: { cmd: 'test -f /tmp/ok', intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 },
    });
    expect(lifecycleFromFlags(flags('--health-cmd', 'true', '--health-interval', '1s', '--health-timeout', '500ms', '--health-retries', '1', '--health-start-period', '1m30s')).healthcheck).toEqual({
      cmd: 'true', intervalMs: 1_000, timeoutMs: 500, retries: 1, startPeriodMs: 90_000,
    });
  });

  it('reads the restart flags, leaving absent ones absent', () => {
    expect(lifecycleFromFlags(flags('--restart-condition', 'on-failure', '--restart-max-attempts', '3', '--restart-delay', '5s'))).toEqual({
      restartPolicy: { condition: 'on-failure', maxAttempts: 3, delayMs: 5_000 },
    });
  });

  it('refuses bad values naming the flag and what is allowed', () => {
    expect(usageError(() => lifecycleFromFlags(flags('--health-cmd', 'true', '--health-interval', '5')))).toMatch(/^invalid --health-interval "5" \(a unit is required: 5s\?\)/);
    expect(usageError(() => lifecycleFromFlags(flags('--health-cmd', 'true', '--health-interval', '10ms')))).toBe('invalid --health-interval "10ms": health interval: at least 100ms (each check is a process)');
    expect(usageError(() => lifecycleFromFlags(flags('--health-cmd', 'true', '--health-retries', '0')))).toMatch(/^invalid --health-retries "0": a whole number from 1/);
    expect(usageError(() => lifecycleFromFlags(flags('--health-cmd', '')))).toMatch(/^invalid --health-cmd "": health command cannot be empty/);
    expect(usageError(() => lifecycleFromFlags(flags('--health-interval', '5s')))).toMatch(/need --health-cmd/);
    expect(usageError(() => lifecycleFromFlags(flags('--no-healthcheck', '--health-cmd', 'true')))).toMatch(/--no-healthcheck conflicts/);
    expect(usageError(() => lifecycleFromFlags(flags('--restart-max-attempts', '-1')))).toMatch(/^invalid --restart-max-attempts "-1": a whole number from 0/);
    expect(usageError(() => lifecycleFromFlags(flags('--restart-window', '0')))).toMatch(/^invalid --restart-window "0": restart window: more than 0/);
    expect(() => flags('--restart-condition', 'always')).toThrow(/--restart-condition.*always.*Allowed choices are none, on-failure, any/);
  });
});

describe('lifecycleFromFlags on update', () => {
  const current = { healthcheck: { cmd: 'true', intervalMs: 1_000, timeoutMs: 500, retries: 1, startPeriodMs: 0 }, restartPolicy: { condition: 'none' as const } };

  it('changes only what the flags name', () => {
    expect(lifecycleFromFlags(flags('--health-retries', '5', '--restart-delay', '1s'), current)).toEqual({
      healthcheck: { ...current.healthcheck, retries: 5 },
      restartPolicy: { condition: 'none', delayMs: 1_000 },
    });
  });

  it('--no-healthcheck removes the check', () => {
    expect(lifecycleFromFlags(flags('--no-healthcheck'), current)).toEqual({ healthcheck: null });
  });
});
