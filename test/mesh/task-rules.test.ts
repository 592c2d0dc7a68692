import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn } from '../../src/sandbox/exec.js';
import { applyHostRules, applySysctls, applyTaskRules } from '../../src/mesh/iptables-apply.js';
import { IptablesWriter } from '../../src/mesh/iptables-writer.js';
import { IptablesCommandError } from '../../src/mesh/errors.js';
import { Rtnl } from '../../src/sandbox/rtnl.js';
import { NamespaceNotFoundError } from '../../src/sandbox/errors.js';
import { NftBackend } from '../../src/vip/nft/nft-backend.js';
import type { MeshInput } from '../../src/mesh/mesh-input.js';
import type { MeshPlan } from '../../src/mesh/mesh-plan.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { syncReturnRoute } from '../../src/mesh/return-route.js';
import { labMeshNode, MeshLab, standInServerArgv } from './mesh-lab.js';

// client 192.0.2.100 --underlay-- host 192.0.2.1 [gwbr 172.18.0.1/16]
//   sbox: eth1 172.18.0.2 (gwbridge), eth0 10.255.0.2/16 (ingress; a veth stands in for the overlay)
//   task: eth0 172.18.0.3 (gwbridge, its default route, as Docker's tasks have), eth1 10.255.0.9/16 (ingress)
// The sbox runs the VIP layer's nftables backend: for policy=local it DNATs to the local task, no SNAT.
const GW = 'meshnet_gwbr';
const lab = new MeshLab('mesh-task');
let host = '';
let sbox = '';
let task = '';
let client = '';
let plan: MeshPlan;
let lb: NftBackend | null = null;
let hostWriter: IptablesWriter;
let taskWriter: IptablesWriter;
let taskRtnl: Rtnl | null = null;

const state: MeshInput = {
  node: labMeshNode(GW),
  services: [
    {
      id: 'api',
      name: 'api',
      healthPort: 31000,
      ports: [{ published: 9000, target: 8080, protocol: 'tcp', mode: 'ingress', policy: 'local' }],
    },
  ],
  tasks: [{ id: 'api.1', serviceId: 'api', nodeId: 'n1', state: 'running', ingressAddress: '10.255.0.9', ingressInterface: 'eth1' }],
};

async function curl(netns: string, url: string): Promise<{ code: number; body: string }> {
  const r = await execIn(netns, ['curl', '-sS', '--max-time', '2', url], { allowFailure: true });
  return { code: r.code, body: r.stdout.trim() };
}

describe('task rules: redirect to the target port, policy=local return route', () => {
  beforeAll(async () => {
    host = await lab.netns('host');
    sbox = await lab.netns('sbox');
    task = await lab.netns('task');
    client = await lab.netns('client');
    await lab.ip(host, `link add ${GW} type bridge`);
    await lab.ip(host, `addr add 172.18.0.1/16 dev ${GW}`);
    await lab.ip(host, `link set ${GW} up`);
    await lab.veth({ netns: host, name: 'veth-sbox' }, { netns: sbox, name: 'eth1', cidr: '172.18.0.2/16' });
    await lab.veth({ netns: host, name: 'veth-task' }, { netns: task, name: 'eth0', cidr: '172.18.0.3/16' });
    await lab.ip(host, `link set veth-sbox master ${GW}`);
    await lab.ip(host, `link set veth-task master ${GW}`);
    await lab.ip(sbox, 'route add default via 172.18.0.1');
    await lab.ip(task, 'route add default via 172.18.0.1');
    await lab.veth({ netns: sbox, name: 'eth0', cidr: '10.255.0.2/16' }, { netns: task, name: 'eth1', cidr: '10.255.0.9/16' });
    await lab.veth({ netns: host, name: 'eth0', cidr: '192.0.2.1/24' }, { netns: client, name: 'eth0', cidr: '192.0.2.100/24' });
    await lab.start(task, standInServerArgv('api.1', [8080]));
    plan = computeMeshPlan(state);
    // The sandbox balances with the VIP layer's nftables backend, fed the plan's VirtualServices.
    applySysctls(sbox, plan.sbox.sysctls);
    lb = new NftBackend(sbox);
    await lb.apply({ services: plan.sbox.virtualServices });
    hostWriter = new IptablesWriter({ netns: host });
    taskWriter = new IptablesWriter({ netns: task });
    taskRtnl = Rtnl.open(task);
    applySysctls(host, plan.host.sysctls);
    await applyHostRules(hostWriter, plan.host);
  });

  afterAll(async () => {
    lb?.close();
    taskRtnl?.close();
    await lab.destroy();
  });

  it('the plan gives the task a redirect 9000 -> 8080 and a return route via the sandbox', () => {
    expect(plan.tasks).toHaveLength(1);
    expect(plan.tasks[0]!.returnRoute).not.toBeNull();
  });

  it('with the redirect but without the return route, replies to the real client address are lost', async () => {
    expect((await applyTaskRules(taskWriter, plan.tasks[0]!)).changed).toBe(true);
    // The reply leaves through the task's default route (the gwbridge), bypassing the sandbox's conntrack.
    expect((await curl(client, 'http://192.0.2.1:9000/')).code).not.toBe(0);
  });

  it('with the return route the task answers and sees the client address (no SNAT)', async () => {
    expect(await syncReturnRoute(taskRtnl!, plan.tasks[0]!.returnRoute)).toBe(true);
    expect(await syncReturnRoute(taskRtnl!, plan.tasks[0]!.returnRoute)).toBe(false);
    const rules = await execIn(task, ['ip', 'rule', 'show', 'pref', '2550']);
    expect(rules.stdout.trim().split('\n')).toEqual(['2550:\tfrom 10.255.0.9 lookup 2550']);
    const routes = await execIn(task, ['ip', '-4', 'route', 'show', 'table', '2550']);
    expect(routes.stdout.trim().split('\n').map((l) => l.trim())).toEqual(['default via 10.255.0.2 dev eth1', '10.255.0.0/16 dev eth1 scope link']);
    expect(await curl(client, 'http://192.0.2.1:9000/')).toEqual({ code: 0, body: 'api.1 8080 192.0.2.100' });
  });

  it('a return route changed by hand is repaired: a wrong gateway, a stray route, a stray rule', async () => {
    await execIn(task, ['ip', 'route', 'replace', 'default', 'via', '10.255.0.77', 'dev', 'eth1', 'table', '2550']);
    await execIn(task, ['ip', 'route', 'add', '192.168.9.0/24', 'dev', 'eth1', 'table', '2550']);
    await execIn(task, ['ip', 'rule', 'add', 'from', '10.255.0.50', 'lookup', '2550', 'pref', '2550']);
    expect(await syncReturnRoute(taskRtnl!, plan.tasks[0]!.returnRoute)).toBe(true);
    expect((await execIn(task, ['ip', 'rule', 'show', 'pref', '2550'])).stdout.trim()).toBe('2550:\tfrom 10.255.0.9 lookup 2550');
    const routes = await execIn(task, ['ip', '-4', 'route', 'show', 'table', '2550']);
    expect(routes.stdout).toContain('default via 10.255.0.2 dev eth1');
    expect(routes.stdout).not.toContain('192.168.9.0');
    expect(await syncReturnRoute(taskRtnl!, plan.tasks[0]!.returnRoute)).toBe(false);
    expect((await curl(client, 'http://192.0.2.1:9000/')).code).toBe(0);
  });

  it('the task rules re-apply as a no-op; unpublishing removes the redirect and the return route', async () => {
    expect((await applyTaskRules(taskWriter, plan.tasks[0]!)).changed).toBe(false);
    expect((await applyTaskRules(taskWriter, plan.tasks[0]!, { resync: true })).changed).toBe(false);
    const nat = await execIn(task, ['iptables', '-t', 'nat', '-S']);
    expect(nat.stdout).toContain('-A MESHNET-INGRESS -d 10.255.0.9/32 -p tcp -m tcp --dport 9000 -j REDIRECT --to-ports 8080');
    // The plan after `service update --publish-rm 9000`: the task is no longer in plan.tasks.
    const unpublished = computeMeshPlan({ ...state, services: [{ ...state.services[0]!, ports: [] }] });
    expect(unpublished.tasks).toEqual([]);
    expect((await applyTaskRules(taskWriter, null)).changed).toBe(true);
    expect(await syncReturnRoute(taskRtnl!, null)).toBe(true);
    expect(await syncReturnRoute(taskRtnl!, null)).toBe(false);
    const after = await execIn(task, ['iptables', '-t', 'nat', '-S']);
    expect(after.stdout).not.toContain('MESHNET-INGRESS');
    expect((await execIn(task, ['ip', 'rule', 'show', 'pref', '2550'])).stdout.trim()).toBe('');
    expect((await execIn(task, ['ip', '-4', 'route', 'show', 'table', '2550'])).stdout.trim()).toBe('');
    expect((await curl(client, 'http://192.0.2.1:9000/')).code).not.toBe(0);
  });

  it('a task namespace that vanished gives typed errors that name it', async () => {
    const gone = `${lab.dir.dir}/vanished`;
    await expect(applyTaskRules(new IptablesWriter({ netns: gone }), plan.tasks[0]!)).rejects.toThrow(IptablesCommandError);
    expect(() => Rtnl.open(gone)).toThrow(NamespaceNotFoundError);
  });

  it('a node whose local task stopped publishes nothing for the policy=local port: the host refuses', async () => {
    const gone = computeMeshPlan({ ...state, tasks: [{ ...state.tasks[0]!, state: 'stopped' }] });
    await applyHostRules(hostWriter, gone.host);
    const r = await execIn(client, ['curl', '-sS', '--max-time', '2', 'http://192.0.2.1:9000/'], { allowFailure: true });
    expect(r.stderr).toMatch(/Connection refused|Failed to connect/);
    expect(gone.health[0]!.localTasks).toBe(0);
    expect((await applyHostRules(hostWriter, null)).changed).toBe(true);
  });
});
