import { describe, expect, it } from 'vitest';
import { InvalidMeshInputError } from './errors.js';
import { fakeRestore } from './fake-iptables.test-helper.js';
import { knownState } from './fixtures.test-data.js';
import { ANTISPOOF_CHAIN, ISOLATION_CHAIN } from './gwbridge-isolation.js';
import { emptyHostFirewallRuleSets, hostFirewallRuleSets, hostFirewallSysctls, type HostFirewallInput } from './host-firewall.js';
import { hostRuleSet, renderRestore } from './iptables-render.js';
import type { IptablesRuleSet } from './iptables-ruleset.js';
import { parseIptablesSave, type IptablesState } from './iptables-save-parse.js';
import { LOCALNET_CHAIN } from './localnet-guard.js';
import { computeMeshPlan } from './published-ports.js';
import { VXLAN_CHAIN } from './vxlan-peers.js';

const input: HostFirewallInput = {
  gwbridge: { name: 'meshnet_gwbr', subnet: '172.18.0.0/16' },
  legs: [
    { hostIf: 'mn-sbox', address: '172.18.0.2' },
    { hostIf: 'mgaaaaaaaaaaa', address: '172.18.0.3' },
  ],
  vxlanPeers: ['192.0.2.3', '10.1.0.12', '192.0.2.3', '10.1.0.9'],
};

// A host that already has someone else's rules in every table the firewall touches.
const other = parseIptablesSave(`*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -j MARK --set-xmark 0x1/0xffffffff
COMMIT
`);

const applyAll = (sets: IptablesRuleSet[], start: IptablesState): IptablesState =>
  sets.reduce((state, set) => {
    const script = renderRestore(set, state);
    return script === null ? state : fakeRestore(state, script);
  }, start);

function rejects(change: (v: HostFirewallInput) => HostFirewallInput, field: RegExp): void {
  let caught: unknown;
  try {
    hostFirewallRuleSets(change(input));
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidMeshInputError);
  expect((caught as Error).message).toMatch(field);
}

describe('hostFirewallRuleSets', () => {
  it('gives three owners with distinct comments, none of them the mesh host rules\' own', () => {
    const comments = hostFirewallRuleSets(input).map((s) => s.comment);
    expect(comments).toEqual(['meshnet-localnet', 'meshnet-isolation', 'meshnet-vxlan']);
    expect(comments).not.toContain(hostRuleSet(computeMeshPlan(knownState()).host).comment);
  });

  it('admits each VXLAN peer once, in address order, and drops the rest', () => {
    const vxlan = hostFirewallRuleSets({ ...input, vxlanPort: 8472 })[2]!;
    expect(vxlan.chains).toEqual([
      {
        table: 'filter',
        name: VXLAN_CHAIN,
        rules: ['-s 10.1.0.9/32 -j RETURN', '-s 10.1.0.12/32 -j RETURN', '-s 192.0.2.3/32 -j RETURN', '-j DROP'],
      },
    ]);
    expect(vxlan.builtins).toEqual([
      { table: 'filter', chain: 'INPUT', rule: '-p udp -m udp --dport 8472 -m comment --comment meshnet-vxlan -j MESHNET-VXLAN' },
    ]);
  });

  it('drops all VXLAN when there is no live peer, and adds nothing when the node has no overlay', () => {
    expect(hostFirewallRuleSets({ ...input, vxlanPeers: [] })[2]!.chains[0]!.rules).toEqual(['-j DROP']);
    const none = hostFirewallRuleSets({ ...input, vxlanPeers: null })[2]!;
    expect(none.chains).toEqual([]);
    expect(none.builtins).toEqual([]);
  });

  it('pins each leg to its own address; no legs, no anti-spoofing chain', () => {
    const isolation = hostFirewallRuleSets(input)[1]!;
    expect(isolation.chains.find((c) => c.name === ANTISPOOF_CHAIN)!.rules).toEqual([
      '! -s 172.18.0.3/32 -m physdev --physdev-in mgaaaaaaaaaaa -j DROP',
      '! -s 172.18.0.2/32 -m physdev --physdev-in mn-sbox -j DROP',
    ]);
    const bare = hostFirewallRuleSets({ ...input, legs: [] })[1]!;
    expect(bare.chains.map((c) => c.name)).toEqual([ISOLATION_CHAIN]);
    expect(bare.builtins.map((b) => `${b.table}/${b.chain}`)).toEqual(['filter/FORWARD']);
  });

  it('isolation decides every packet that touches the gwbridge: the chain cannot fall through for it', () => {
    const rules = hostFirewallRuleSets(input)[1]!.chains.find((c) => c.name === ISOLATION_CHAIN)!.rules;
    // The last two rules catch everything leaving (-i) and entering (-o) the bridge.
    expect(rules.slice(-2)).toEqual(['-i meshnet_gwbr -j ACCEPT', '-o meshnet_gwbr -j DROP']);
    expect(rules.every((r) => /-j (ACCEPT|DROP)$/.test(r))).toBe(true);
  });

  it('rejects input that could not be a leg, a bridge or a peer, naming the field', () => {
    rejects((v) => ({ ...v, legs: [{ hostIf: 'mg+', address: '172.18.0.3' }] }), /legs\.0\.hostIf/);
    rejects((v) => ({ ...v, legs: [{ hostIf: 'x\n-A INPUT -j ACCEPT', address: '172.18.0.3' }] }), /legs\.0\.hostIf/);
    rejects((v) => ({ ...v, legs: [{ hostIf: 'mg1', address: '10.0.0.3' }] }), /legs\.0\.address: 10\.0\.0\.3 is outside the gwbridge subnet/);
    rejects((v) => ({ ...v, legs: [...v.legs, { hostIf: 'mn-sbox', address: '172.18.0.9' }] }), /legs\.2\.hostIf: leg mn-sbox is listed twice/);
    rejects((v) => ({ ...v, vxlanPeers: ['192.0.2.300'] }), /vxlanPeers\.0/);
    rejects((v) => ({ ...v, gwbridge: { name: 'meshnet_gwbr', subnet: '172.18.0.0' } }), /gwbridge\.subnet/);
  });

  it('applied over another owner\'s rules, touches none of them; a second pass writes nothing', () => {
    const sets = hostFirewallRuleSets(input);
    const after = applyAll(sets, other);
    for (const set of sets) expect(renderRestore(set, after)).toBeNull();
    expect(after.get('filter')!.get('INPUT')).toEqual([
      '-p udp -m udp --dport 4789 -m comment --comment meshnet-vxlan -j MESHNET-VXLAN',
      '-m comment --comment meshnet-localnet -j MESHNET-LOCALNET',
      '-p tcp -m tcp --dport 22 -j ACCEPT',
    ]);
    expect(after.get('mangle')!.get('PREROUTING')).toContain('-i eth0 -j MARK --set-xmark 0x1/0xffffffff');
  });

  it('the mesh host rules and the firewall do not prune each other', () => {
    const mesh = hostRuleSet(computeMeshPlan(knownState()).host);
    const both = applyAll([...hostFirewallRuleSets(input), mesh], other);
    expect(renderRestore(mesh, both)).toBeNull();
    for (const set of hostFirewallRuleSets(input)) expect(renderRestore(set, both)).toBeNull();
  });

  it('the empty sets return the host exactly to what it had, in every table', () => {
    const after = applyAll(hostFirewallRuleSets(input), other);
    expect(after.get('mangle')!.has(LOCALNET_CHAIN)).toBe(true);
    expect(applyAll(emptyHostFirewallRuleSets(), after)).toEqual(other);
  });

  it('asks for br_netfilter on the host, without which bridged leg-to-leg frames skip iptables', () => {
    expect(hostFirewallSysctls()).toEqual([{ key: 'net.bridge.bridge-nf-call-iptables', value: '1' }]);
  });
});

describe('hostFirewallRuleSets over a v6 underlay', () => {
  const v6 = { ...input, localVtep: '2001:db8::1', vxlanPeers: ['2001:db8::10', '2001:db8::3', '2001:db8::3'] };

  it('keeps a v4 node exactly as before: the same sets whether its VTEP is given or not, and no ip6tables owner', () => {
    expect(hostFirewallRuleSets({ ...input, localVtep: '192.0.2.1' })).toEqual(hostFirewallRuleSets(input));
    expect(hostFirewallRuleSets(input).every((s) => s.family === undefined)).toBe(true);
  });

  it('moves the VXLAN filter to ip6tables: each v6 peer once, in address order, then DROP; the v4 filter emptied', () => {
    const sets = hostFirewallRuleSets(v6);
    expect(sets.map((s) => [s.comment, s.family ?? 'ipv4'])).toEqual([
      ['meshnet-localnet', 'ipv4'],
      ['meshnet-isolation', 'ipv4'],
      ['meshnet-vxlan', 'ipv4'],
      ['meshnet-vxlan6', 'ipv6'],
    ]);
    expect(sets[2]!.chains).toEqual([]);
    expect(sets[2]!.builtins).toEqual([]);
    expect(sets[3]!.chains).toEqual([{ table: 'filter', name: VXLAN_CHAIN, rules: ['-s 2001:db8::3/128 -j RETURN', '-s 2001:db8::10/128 -j RETURN', '-j DROP'] }]);
    expect(sets[3]!.builtins).toEqual([{ table: 'filter', chain: 'INPUT', rule: '-p udp -m udp --dport 4789 -m comment --comment meshnet-vxlan6 -j MESHNET-VXLAN' }]);
  });

  it('renders an ip6tables-restore transaction that a second pass leaves alone', () => {
    const set = hostFirewallRuleSets(v6)[3]!;
    const after = applyAll([set], new Map());
    expect(renderRestore(set, after)).toBeNull();
    expect(after.get('filter')?.get(VXLAN_CHAIN)).toEqual(['-s 2001:db8::3/128 -j RETURN', '-s 2001:db8::10/128 -j RETURN', '-j DROP']);
  });

  it('admits no peer of the other family, and nothing at all without an overlay', () => {
    expect(hostFirewallRuleSets({ ...v6, vxlanPeers: ['192.0.2.3', '2001:db8::3'] })[3]!.chains[0]!.rules).toEqual(['-s 2001:db8::3/128 -j RETURN', '-j DROP']);
    expect(hostFirewallRuleSets({ ...input, vxlanPeers: ['192.0.2.3', '2001:db8::3'] })[2]!.chains[0]!.rules).toEqual(['-s 192.0.2.3/32 -j RETURN', '-j DROP']);
    expect(hostFirewallRuleSets({ ...v6, vxlanPeers: null })[3]!.chains).toEqual([]);
  });

  it('rejects a peer or local VTEP that could not carry VXLAN, naming the field', () => {
    expect(() => hostFirewallRuleSets({ ...v6, vxlanPeers: ['fe80::2'] })).toThrow(/vxlanPeers\.0/);
    expect(() => hostFirewallRuleSets({ ...v6, localVtep: 'fe80::1' })).toThrow(/localVtep/);
  });

  it('empties the ip6tables filter too when a v6 node leaves; a v4 one runs no ip6tables tool', () => {
    expect(emptyHostFirewallRuleSets('2001:db8::1').map((s) => s.family ?? 'ipv4')).toEqual(['ipv4', 'ipv4', 'ipv4', 'ipv6']);
    expect(emptyHostFirewallRuleSets('192.0.2.1')).toEqual(emptyHostFirewallRuleSets());
  });
});
