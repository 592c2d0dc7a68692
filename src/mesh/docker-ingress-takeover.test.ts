import { describe, expect, it } from 'vitest';
import { checkDockerIngressTakeover, DOCKER_INGRESS_TAKEOVER_FLAG, DockerIngressInUseError, foreignDockerIngressRules } from './docker-ingress-takeover.js';
import { knownState } from './fixtures.test-data.js';
import { hostRuleSet, renderRestore } from './iptables-render.js';
import { fakeRestore } from './fake-iptables.test-helper.js';
import { parseIptablesSave } from './iptables-save-parse.js';
import { computeMeshPlan } from './published-ports.js';

const host = computeMeshPlan(knownState()).host;
const mine = { gwbridge: host.gwbridge.name, sboxAddress: host.sboxAddress };

// What `iptables-save` shows on a Docker Swarm node publishing 8080 (moby's service_linux.go rules).
const swarmNode = (sbox: string, ports: number[]): string => `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER-INGRESS - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
-A POSTROUTING -o docker_gwbridge -m addrtype --src-type LOCAL -j MASQUERADE
${ports.map((p) => `-A DOCKER-INGRESS -p tcp -m tcp --dport ${p} -j DNAT --to-destination ${sbox}:${p}`).join('\n')}
-A DOCKER-INGRESS -j RETURN
COMMIT
*filter
:FORWARD DROP [0:0]
:DOCKER-INGRESS - [0:0]
-A FORWARD -j DOCKER-INGRESS
${ports.map((p) => `-A DOCKER-INGRESS -p tcp -m tcp --dport ${p} -j ACCEPT\n-A DOCKER-INGRESS -p tcp -m state --state RELATED,ESTABLISHED -m tcp --sport ${p} -j ACCEPT`).join('\n')}
-A DOCKER-INGRESS -j RETURN
COMMIT
`;

describe('foreignDockerIngressRules', () => {
  it('finds nothing on a host without the chains, or with only what this meshnet wrote', () => {
    expect(foreignDockerIngressRules(new Map(), mine)).toEqual([]);
    const applied = fakeRestore(new Map(), renderRestore(hostRuleSet(host), new Map())!);
    expect(foreignDockerIngressRules(applied, mine)).toEqual([]);
  });

  it('finds a Docker Swarm node: its DNATs elsewhere, its filter rules and its uncommented jumps', () => {
    const foreign = foreignDockerIngressRules(parseIptablesSave(swarmNode('172.19.0.2', [8080])), mine);
    expect(foreign).toEqual([
      { table: 'nat', chain: 'DOCKER-INGRESS', rule: '-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.19.0.2:8080' },
      { table: 'nat', chain: 'PREROUTING', rule: '-m addrtype --dst-type LOCAL -j DOCKER-INGRESS' },
      { table: 'nat', chain: 'OUTPUT', rule: '-m addrtype --dst-type LOCAL -j DOCKER-INGRESS' },
      { table: 'filter', chain: 'DOCKER-INGRESS', rule: '-p tcp -m tcp --dport 8080 -j ACCEPT' },
      { table: 'filter', chain: 'DOCKER-INGRESS', rule: '-p tcp -m state --state RELATED,ESTABLISHED -m tcp --sport 8080 -j ACCEPT' },
      { table: 'filter', chain: 'FORWARD', rule: '-j DOCKER-INGRESS' },
    ]);
  });

  it('finds an idle swarm node by its jumps, even when its sandbox address is the same as ours', () => {
    const idle = foreignDockerIngressRules(parseIptablesSave(swarmNode(host.sboxAddress, [])), mine);
    expect(idle.map((r) => r.chain)).toEqual(['PREROUTING', 'OUTPUT', 'FORWARD']);
    // Docker's DNAT to the same address reads like ours; the jumps give it away all the same.
    const same = foreignDockerIngressRules(parseIptablesSave(swarmNode(host.sboxAddress, [8000])), mine);
    expect(same.filter((r) => r.chain === 'DOCKER-INGRESS' && r.table === 'nat')).toEqual([]);
    expect(same.length).toBeGreaterThan(0);
  });

  it('counts our rules mixed with someone else\'s as foreign (a jump by -g, a rule added by hand)', () => {
    const ours = fakeRestore(new Map(), renderRestore(hostRuleSet(host), new Map())!);
    ours.get('nat')!.get('DOCKER-INGRESS')!.unshift('-p tcp -m tcp --dport 22 -j DNAT --to-destination 10.0.0.9:22');
    ours.get('nat')!.set('CUSTOM', ['-g DOCKER-INGRESS']);
    expect(foreignDockerIngressRules(ours, mine)).toEqual([
      { table: 'nat', chain: 'DOCKER-INGRESS', rule: '-p tcp -m tcp --dport 22 -j DNAT --to-destination 10.0.0.9:22' },
      { table: 'nat', chain: 'CUSTOM', rule: '-g DOCKER-INGRESS' },
    ]);
  });
});

describe('checkDockerIngressTakeover', () => {
  const swarm = parseIptablesSave(swarmNode('172.19.0.2', [8080]));

  it('refuses a swarm node with an error that names the chain, a rule and the override flag', () => {
    let caught: unknown;
    try {
      checkDockerIngressTakeover(swarm, mine, false);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DockerIngressInUseError);
    const err = caught as DockerIngressInUseError;
    expect(err.code).toBe('MESH_DOCKER_INGRESS_IN_USE');
    expect(err.rules).toHaveLength(6);
    expect(err.message).toContain('hold 6 rule(s) meshnet did not write');
    expect(err.message).toContain('nat DOCKER-INGRESS: -p tcp -m tcp --dport 8080 -j DNAT');
    expect(err.message).toContain('docker swarm leave');
    expect(err.message).toContain(DOCKER_INGRESS_TAKEOVER_FLAG);
    expect(DOCKER_INGRESS_TAKEOVER_FLAG).toBe('--allow-docker-ingress-takeover');
  });

  it('with the override, returns what it will take over, for the log', () => {
    expect(checkDockerIngressTakeover(swarm, mine, true)).toHaveLength(6);
    expect(checkDockerIngressTakeover(new Map(), mine, false)).toEqual([]);
  });
});
