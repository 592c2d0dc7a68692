import { describe, expect, test } from 'vitest';
import { parseSubnetFlags } from './subnet-flags.js';
import { CliError } from './cli-context.js';

describe('network create subnet flags', () => {
  test("sort --subnet into v4 and v6, as Docker's --ipv6 --subnet does", () => {
    expect(parseSubnetFlags({ subnet: ['10.0.9.0/24', 'fd00:9::/64'], ipv6: true })).toEqual({ subnet: '10.0.9.0/24', subnet6: 'fd00:9::/64', ipv6: true });
    expect(parseSubnetFlags({ subnet: [] })).toEqual({});
    expect(parseSubnetFlags({ subnet: [], subnet6: 'fd00:9::/64', ipv6: true })).toEqual({ subnet6: 'fd00:9::/64', ipv6: true });
  });

  test('a v6 subnet without --ipv6, or two of a family, is a usage error (exit 2) naming the flag', () => {
    const err = (o: Parameters<typeof parseSubnetFlags>[0]) => {
      try {
        parseSubnetFlags(o);
      } catch (e) {
        return e as CliError;
      }
      throw new Error('accepted');
    };
    expect(err({ subnet: ['fd00:9::/64'] })).toMatchObject({ exitCode: 2, message: expect.stringContaining('--ipv6') });
    expect(err({ subnet: ['10.0.1.0/24', '10.0.2.0/24'] }).message).toMatch(/^--subnet:/);
    expect(err({ subnet: ['fd00:1::/64'], subnet6: 'fd00:2::/64', ipv6: true }).message).toMatch(/--subnet6/);
  });
});
