import { describe, expect, it } from 'vitest';
import { renderRestore, ruleSetState } from '../mesh/iptables-render.js';
import { resolverNatRules, resolverNatRuleSet } from './resolver-nat.js';

describe('resolverNatRules', () => {
  it('renders Docker’s DOCKER_OUTPUT / DOCKER_POSTROUTING rules for the resolver’s port', () => {
    expect(resolverNatRules(40123)).toBe(
      [
        '*nat',
        ':DOCKER_OUTPUT - [0:0]',
        ':DOCKER_POSTROUTING - [0:0]',
        '-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40123',
        '-A DOCKER_OUTPUT -d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:40123',
        '-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p udp -m udp --sport 40123 -j SNAT --to-source :53',
        '-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p tcp -m tcp --sport 40123 -j SNAT --to-source :53',
        '-I POSTROUTING 1 -d 127.0.0.11/32 -m comment --comment meshnet-dns -j DOCKER_POSTROUTING',
        '-I OUTPUT 1 -d 127.0.0.11/32 -m comment --comment meshnet-dns -j DOCKER_OUTPUT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('as a rule set it is idempotent, and a new port refills the chains without touching the jumps', () => {
    const applied = ruleSetState(resolverNatRuleSet(40123));
    expect(renderRestore(resolverNatRuleSet(40123), applied)).toBeNull();
    const moved = renderRestore(resolverNatRuleSet(41000), applied)!;
    expect(moved).toContain('--to-destination 127.0.0.11:41000');
    expect(moved).toContain('--sport 41000 -j SNAT');
    expect(moved).not.toMatch(/^-[ID] (OUTPUT|POSTROUTING)/m);
  });

  it('refuses a port that needs no NAT or cannot exist', () => {
    for (const bad of [53, 0, -1, 65536, 1.5]) expect(() => resolverNatRules(bad)).toThrow(/other than 53/);
  });
});
