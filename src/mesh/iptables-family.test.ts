import { describe, expect, it } from 'vitest';
import { hostRuleSet, taskRuleSet } from './iptables-render.js';
import type { HostPlan } from './mesh-plan.js';

const host6: HostPlan = {
  gwbridge: { name: 'meshnet_gwbr', subnet: 'fd6d:6573:686e:ffff::/64' },
  sboxAddress: 'fd6d:6573:686e:ffff::2',
  ingressPorts: [{ protocol: 'tcp', port: 8000 }],
  hostModePorts: [{ protocol: 'udp', port: 5353, serviceId: 'dns', taskId: 'dns.1', taskAddress: 'fd6d:6573:686e:ffff::3', targetPort: 53 }],
  sysctls: [],
};

describe('v6 rule sets for the ip6tables writer', () => {
  it('DNATs published and mode=host ports to bracketed v6 targets, matching /128 hosts and the v6 gwbridge subnet', () => {
    const set = hostRuleSet(host6, 'ipv6');
    const rules = [...set.chains.flatMap((c) => c.rules), ...set.builtins.map((b) => b.rule)];
    expect(rules).toContain('-p tcp -m tcp --dport 8000 -j DNAT --to-destination [fd6d:6573:686e:ffff::2]:8000');
    expect(rules).toContain('-p udp -m udp --dport 5353 -j DNAT --to-destination [fd6d:6573:686e:ffff::3]:53');
    expect(rules.filter((r) => r.includes('/32'))).toEqual([]);
    expect(rules.some((r) => r.startsWith('-d fd6d:6573:686e:ffff::2/128 -o meshnet_gwbr'))).toBe(true);
    expect(rules).toContain('-s fd6d:6573:686e:ffff::/64 ! -o meshnet_gwbr -m comment --comment meshnet -j MASQUERADE');
  });

  it('REDIRECTs a task\'s v6 twin address, and the v4 sets are unchanged by the family parameter', () => {
    const redirects = [{ protocol: 'tcp' as const, address: 'fd00:ff::7', port: 8000, targetPort: 80 }];
    expect(taskRuleSet({ redirects }, 'ipv6').chains[0]!.rules).toEqual(['-d fd00:ff::7/128 -p tcp -m tcp --dport 8000 -j REDIRECT --to-ports 80']);
    const v4 = { redirects: [{ ...redirects[0]!, address: '10.255.0.7' }] };
    expect(taskRuleSet(v4)).toEqual(taskRuleSet(v4, 'ipv4'));
  });
});
