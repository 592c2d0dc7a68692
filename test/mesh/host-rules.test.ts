import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn } from '../../src/sandbox/exec.js';
import { getSysctl } from '../../src/sandbox/sysctl.js';
import { applyHostRules, applySysctls } from '../../src/mesh/iptables-apply.js';
import { IptablesWriter } from '../../src/mesh/iptables-writer.js';
import type { HostPlan } from '../../src/mesh/mesh-plan.js';
import { hasComment } from '../../src/mesh/iptables-save-parse.js';
import type { MeshInput, ServiceInput } from '../../src/mesh/mesh-input.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { labMeshNode, MeshLab, standInServerArgv, udpExchange } from './mesh-lab.js';

// host: eth0 192.0.2.1 (underlay to client), meshnet_gwbr 172.18.0.1/16
// sbox: eth1 172.18.0.2/16 on the gwbridge, standing in for the VIP layer: it serves the ports itself
// client: eth0 192.0.2.100 on the underlay
const GW = 'meshnet_gwbr';
const lab = new MeshLab('mesh-host');
let host = '';
let sbox = '';
let client = '';
let writer: IptablesWriter;

/** The host part of a plan, as the agent applies it: sysctls, then the rules through the namespace's writer. */
async function applyHost(host: HostPlan) {
  applySysctls(writer.netns, host.sysctls);
  return applyHostRules(writer, host);
}

const web: ServiceInput = { id: 'web', name: 'web', ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }] };
const echo: ServiceInput = { id: 'echo', name: 'echo', ports: [{ published: 5353, target: 53, protocol: 'udp', mode: 'ingress', policy: 'cluster' }] };
const metrics: ServiceInput = {
  id: 'metrics',
  name: 'metrics',
  ports: [{ published: 9100, target: 9101, protocol: 'tcp', mode: 'host', policy: 'cluster' }],
};

function input(services: ServiceInput[]): MeshInput {
  return {
    node: labMeshNode(GW),
    services,
    // The sandbox stands in for the mode=host task too: it listens on the target port 9101.
    tasks: [{ id: 'metrics.1', serviceId: 'metrics', nodeId: 'n1', state: 'running', gwbridgeAddress: '172.18.0.2' }],
  };
}

async function curl(netns: string, url: string): Promise<{ code: number; body: string }> {
  const r = await execIn(netns, ['curl', '-sS', '--max-time', '3', url], { allowFailure: true });
  return { code: r.code, body: r.stdout.trim() };
}

const udp = udpExchange;

async function listChain(table: string, chain: string): Promise<{ code: number; text: string }> {
  const r = await execIn(host, ['iptables', '-t', table, '-n', '-L', chain], { allowFailure: true });
  return { code: r.code, text: r.stdout };
}

describe('host rules in namespaces: DOCKER-INGRESS to the ingress sandbox', () => {
  beforeAll(async () => {
    host = await lab.netns('host');
    sbox = await lab.netns('sbox');
    client = await lab.netns('client');
    await lab.ip(host, `link add ${GW} type bridge`);
    await lab.ip(host, `addr add 172.18.0.1/16 dev ${GW}`);
    await lab.ip(host, `link set ${GW} up`);
    await lab.veth({ netns: host, name: 'veth-sbox' }, { netns: sbox, name: 'eth1', cidr: '172.18.0.2/16' });
    await lab.ip(host, `link set veth-sbox master ${GW}`);
    await lab.ip(sbox, 'route add default via 172.18.0.1');
    await lab.veth({ netns: host, name: 'eth0', cidr: '192.0.2.1/24' }, { netns: client, name: 'eth0', cidr: '192.0.2.100/24' });
    await lab.start(sbox, standInServerArgv('sbox', [8000, 9101], [5353]));
    writer = new IptablesWriter({ netns: host });
  });

  afterAll(async () => {
    await lab.destroy();
  });

  it('nothing is reachable before the rules are applied', async () => {
    expect((await curl(client, 'http://192.0.2.1:8000/')).code).not.toBe(0);
  });

  it('applies the plan in one transaction; a second apply writes nothing', async () => {
    const plan = computeMeshPlan(input([web, echo, metrics]));
    expect(plan.conflicts).toEqual([]);
    const first = await applyHost(plan.host);
    expect(first.changed).toBe(true);
    const second = await applyHost(plan.host);
    expect(second).toMatchObject({ changed: false, script: null, readKernel: false, unpublishedUdpPorts: [] });
    // Read back from the kernel (a restarted agent's new writer reads it), the rules compare equal to the plan's.
    expect(await applyHostRules(new IptablesWriter({ netns: host }), plan.host)).toMatchObject({ changed: false, readKernel: true });
    expect(await applyHostRules(writer, plan.host, { resync: true })).toMatchObject({ changed: false });
    expect(getSysctl(host, `net.ipv4.conf.${GW}.route_localnet`)).toBe('1');
    expect(getSysctl(host, 'net.ipv4.ip_forward')).toBe('1');
  });

  it('a client on the underlay reaches the sandbox through the published port, with its own address', async () => {
    const r = await curl(client, 'http://192.0.2.1:8000/');
    expect(r).toEqual({ code: 0, body: 'sbox 8000 192.0.2.100' });
  });

  it('curl localhost:8000 inside the host works (route_localnet + masquerade to the gwbridge address)', async () => {
    const r = await curl(host, 'http://127.0.0.1:8000/');
    expect(r).toEqual({ code: 0, body: 'sbox 8000 172.18.0.1' });
  });

  it('a UDP published port works', async () => {
    expect(await udp(client, '192.0.2.1', 5353, 'ping')).toBe('sbox 5353 192.0.2.100 ping');
  });

  it('a mode=host port goes straight to the task target port', async () => {
    expect(await curl(client, 'http://192.0.2.1:9100/')).toEqual({ code: 0, body: 'sbox 9101 192.0.2.100' });
  });

  it('iptables -t nat -L DOCKER-INGRESS shows the operator one DNAT per port and RETURN last', async () => {
    const { code, text } = await listChain('nat', 'DOCKER-INGRESS');
    expect(code).toBe(0);
    const lines = text.split('\n').filter((l) => /^(DNAT|RETURN)/.test(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^DNAT\s+6\b.*tcp dpt:8000 to:172\.18\.0\.2:8000/);
    expect(lines[1]).toMatch(/^DNAT\s+17\b.*udp dpt:5353 to:172\.18\.0\.2:5353/);
    expect(lines[2]).toMatch(/^RETURN/);
  });

  it('unpublishing one port removes its rule and only its rule', async () => {
    const plan = computeMeshPlan(input([echo, metrics]));
    await applyHost(plan.host);
    expect((await curl(client, 'http://192.0.2.1:8000/')).code).not.toBe(0);
    expect(await udp(client, '192.0.2.1', 5353, 'again')).toBe('sbox 5353 192.0.2.100 again');
    expect((await listChain('nat', 'DOCKER-INGRESS')).text).not.toContain('dpt:8000');
  });

  it('unpublishing everything removes the chains and jumps; leaving the mesh removes the rest', async () => {
    const other = '-s 10.99.0.0/16 -m comment --comment someone-else -j MASQUERADE';
    await execIn(host, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', ...other.split(' ')]);

    // A UDP flow still in conntrack: unpublishing must not leave it DNATed to the sandbox.
    expect(await udp(client, '192.0.2.1', 5353, 'last')).toBe('sbox 5353 192.0.2.100 last');
    const flows = async (): Promise<string> =>
      (await execIn(host, ['conntrack', '-L', '-p', 'udp', '--orig-port-dst', '5353'], { allowFailure: true })).stdout;
    expect(await flows()).toContain('dport=5353');
    const unpublished = await applyHost(computeMeshPlan(input([])).host);
    expect(unpublished.unpublishedUdpPorts).toEqual([5353]);
    expect(await flows()).not.toContain('dport=5353');
    expect((await listChain('nat', 'DOCKER-INGRESS')).code).not.toBe(0);
    expect((await listChain('nat', 'MESHNET-HOSTPORT')).code).not.toBe(0);
    expect((await listChain('filter', 'DOCKER-INGRESS')).code).not.toBe(0);
    expect((await curl(client, 'http://192.0.2.1:9100/')).code).not.toBe(0);
    const nat = (await writer.read(['nat'])).get('nat')!;
    const ours = [...nat.values()].flat().filter((r) => hasComment(r, 'meshnet'));
    expect(ours).toEqual([`-s 172.18.0.0/16 ! -o ${GW} -m comment --comment meshnet -j MASQUERADE`]);

    expect((await applyHostRules(writer, null)).changed).toBe(true);
    const after = await writer.read(['nat', 'filter']);
    const left = [...after.values()].flatMap((chains) => [...chains.values()].flat());
    expect(left.filter((r) => r.includes('meshnet'))).toEqual([]);
    expect(after.get('nat')!.get('POSTROUTING')).toEqual([other]);
    expect((await applyHostRules(writer, null)).changed).toBe(false);
    expect((await applyHostRules(writer, null, { resync: true })).changed).toBe(false);
  });
});
