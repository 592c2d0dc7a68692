import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { addRolloutFlags, rolloutConfigsFromFlags } from './rollout-flags.js';

function parse(args: string[]): Record<string, unknown> {
  const cmd = addRolloutFlags(new Command('update').exitOverride().configureOutput({ writeErr: () => undefined }));
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

describe('rollout flags', () => {
  it('reads Docker\'s flags into update and rollback configs, durations in ms', () => {
    const o = parse(['--update-parallelism', '2', '--update-delay', '1m30s', '--update-failure-action', 'rollback', '--update-monitor', '500ms', '--update-max-failure-ratio', '0.25', '--rollback-parallelism', '0']);
    expect(rolloutConfigsFromFlags(o)).toEqual({
      updateConfig: { parallelism: 2, delayMs: 90_000, failureAction: 'rollback', monitorMs: 500, maxFailureRatio: 0.25 },
      rollbackConfig: { parallelism: 0 },
    });
  });

  it('gives nothing when no flag is given, so stored settings stay', () => {
    expect(rolloutConfigsFromFlags(parse([]))).toEqual({});
  });

  it('refuses bad values naming the flag and what is allowed (exit 2)', () => {
    const bad: [string[], RegExp][] = [
      [['--update-parallelism', '-1'], /--update-parallelism.*whole number/],
      [['--update-parallelism', '1.5'], /--update-parallelism.*whole number/],
      [['--update-delay', '5'], /--update-delay.*unit is required/],
      [['--rollback-monitor', 'soon'], /--rollback-monitor/],
      [['--update-max-failure-ratio', '2'], /--update-max-failure-ratio.*fraction from 0 to 1/],
    ];
    for (const [args, message] of bad) {
      expect(() => rolloutConfigsFromFlags(parse(args))).toThrow(message);
      try {
        rolloutConfigsFromFlags(parse(args));
      } catch (err) {
        expect((err as { exitCode?: number }).exitCode).toBe(2);
      }
    }
  });

  it('offers only the orders and failure actions agents carry out', () => {
    expect(rolloutConfigsFromFlags(parse(['--update-order', 'start-first', '--rollback-order', 'stop-first']))).toEqual({ updateConfig: { order: 'start-first' }, rollbackConfig: { order: 'stop-first' } });
    expect(() => parse(['--update-order', 'blue-green'])).toThrow(/Allowed choices are stop-first, start-first/);
    expect(() => parse(['--rollback-failure-action', 'rollback'])).toThrow(/Allowed choices are pause, continue/);
  });
});
