import { describe, expect, it } from 'vitest';
import { CliError, EXIT } from '../cli/cli-context.js';
import { networkOptions } from './encryption-options.js';

describe('network driver options', () => {
  it('reads --opt KEY[=VALUE] and --encrypted', () => {
    expect(networkOptions(['encrypted'], false)).toEqual({ encrypted: '' });
    expect(networkOptions(['com.example.x=1'], true)).toEqual({ 'com.example.x': '1', encrypted: '' });
    expect(networkOptions([], false)).toEqual({});
  });

  it('refuses bad input with a usage error naming the flag', () => {
    for (const [opts, encrypted, message] of [
      [['=x'], false, /invalid --opt "=x"/],
      [['encrypted=maybe'], false, /encrypted takes no value, or true or false/],
      [['encrypted=false'], true, /--encrypted contradicts/],
    ] as const) {
      let err: unknown;
      try {
        networkOptions(opts, encrypted);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).message).toMatch(message);
      expect((err as CliError).exitCode).toBe(EXIT.usage);
    }
  });
});
