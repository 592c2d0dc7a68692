import { describe, expect, it } from 'vitest';
import { CliError, EXIT } from './cli-context.js';
import { parseDuration } from './duration-flag.js';

describe('parseDuration', () => {
  it('reads Docker\'s forms in milliseconds', () => {
    expect(parseDuration('--health-interval', '500ms')).toBe(500);
    expect(parseDuration('--health-interval', '5s')).toBe(5_000);
    expect(parseDuration('--health-interval', '1m30s')).toBe(90_000);
    expect(parseDuration('--health-interval', '1.5h')).toBe(5_400_000);
    expect(parseDuration('--health-interval', '2h45m10s')).toBe(9_910_000);
    expect(parseDuration('--health-interval', '0')).toBe(0);
    expect(parseDuration('--health-interval', '.5s')).toBe(500);
  });

  it('rounds a remainder below a millisecond up, never down to zero', () => {
    expect(parseDuration('--restart-delay', '1us')).toBe(1);
    expect(parseDuration('--restart-delay', '1500us')).toBe(2);
    expect(parseDuration('--restart-delay', '2000000ns')).toBe(2);
  });

  for (const bad of ['', '30', '5 s', '5sec', '-5s', '1m30', 's', '5S', '1d', '5s ms']) {
    it(`refuses ${JSON.stringify(bad)} with exit 2, naming the flag and the forms`, () => {
      let err: unknown;
      try {
        parseDuration('--health-timeout', bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(EXIT.usage);
      expect((err as CliError).message).toMatch(/^invalid --health-timeout .*: use .*500ms, 5s, 1m30s/);
    });
  }

  it('hints at the missing unit of a bare number', () => {
    expect(() => parseDuration('--health-interval', '30')).toThrow(/a unit is required: 30s\?/);
  });
});
