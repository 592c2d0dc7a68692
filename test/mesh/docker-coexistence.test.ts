import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn } from '../../src/sandbox/exec.js';
import { checkDockerIngressTakeover, DockerIngressInUseError, foreignDockerIngressRules } from '../../src/mesh/docker-ingress-takeover.js';
import { applyHostRules } from '../../src/mesh/iptables-apply.js';
import { IptablesWriter } from '../../src/mesh/iptables-writer.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { knownState } from '../../src/mesh/fixtures.test-data.js';
import { MeshLab } from './mesh-lab.js';

// The rules moby's service_linux.go installs on a Swarm node publishing 8080 (its gwbridge on 172.19.0.0/16).
const SWARM = `*nat
:DOCKER-INGRESS - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
-A DOCKER-INGRESS -p tcp --dport 8080 -j DNAT --to-destination 172.19.0.2:8080
-A DOCKER-INGRESS -j RETURN
COMMIT
*filter
:DOCKER-INGRESS - [0:0]
-A FORWARD -j DOCKER-INGRESS
-A DOCKER-INGRESS -p tcp --dport 8080 -j ACCEPT
-A DOCKER-INGRESS -m state -p tcp --sport 8080 --state ESTABLISHED,RELATED -j ACCEPT
-A DOCKER-INGRESS -j RETURN
COMMIT
`;

const lab = new MeshLab('mesh-docker');
const host = computeMeshPlan(knownState()).host;
const mine = { gwbridge: host.gwbridge.name, sboxAddress: host.sboxAddress };

describe('DOCKER-INGRESS as the kernel prints it: ours, or a Swarm node\'s', () => {
  let meshHost = '';
  let swarmHost = '';

  beforeAll(async () => {
    meshHost = await lab.netns('meshnet');
    swarmHost = await lab.netns('swarm');
    await execIn(swarmHost, ['iptables-restore', '--noflush'], { input: SWARM });
  });

  afterAll(async () => {
    await lab.destroy();
  });

  it('a host holding only what meshnet wrote is meshnet\'s to manage', async () => {
    const writer = new IptablesWriter({ netns: meshHost });
    await applyHostRules(writer, host);
    expect(foreignDockerIngressRules(await writer.read(['nat', 'filter']), mine)).toEqual([]);
  });

  it('a Swarm node is refused, every one of its rules named; the override lets it through', async () => {
    const state = await new IptablesWriter({ netns: swarmHost }).read(['nat', 'filter']);
    expect(() => checkDockerIngressTakeover(state, mine, false)).toThrow(DockerIngressInUseError);
    const foreign = checkDockerIngressTakeover(state, mine, true);
    expect(foreign.map((r) => `${r.table} ${r.chain}`)).toEqual([
      'nat DOCKER-INGRESS',
      'nat PREROUTING',
      'nat OUTPUT',
      'filter DOCKER-INGRESS',
      'filter DOCKER-INGRESS',
      'filter FORWARD',
    ]);
  });
});
