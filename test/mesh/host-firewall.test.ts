import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn } from '../../src/sandbox/exec.js';
import { getSysctl } from '../../src/sandbox/sysctl.js';
import { applyHostRules, applySysctls } from '../../src/mesh/iptables-apply.js';
import { IptablesWriter } from '../../src/mesh/iptables-writer.js';
import { emptyHostFirewallRuleSets, hostFirewallRuleSets, hostFirewallSysctls, type HostFirewallInput } from '../../src/mesh/host-firewall.js';
import { computeMeshPlan } from '../../src/mesh/published-ports.js';
import { labMeshNode, MeshLab, standInServerArgv } from './mesh-lab.js';

// host:    eth0 192.0.2.1/24 (underlay), meshnet_gwbr 172.18.0.1/16, vx0 (a VXLAN device, as the overlay makes them),
//          a program on 127.0.0.1:7000 only
// sbox:    eth1 172.18.0.2 (host side mn-sbox), stands in for the ingress sandbox: serves the published port 8000
// task1:   eth1 172.18.0.3 (host side mgt1), a task of network n1
// task2:   eth1 172.18.0.4 (host side mgt2), a task of network n2: serves 80, and 9101 behind mode=host 9100
// lan:     eth0 192.0.2.100 (a LAN neighbour, serves 8080 for task egress), also 192.0.2.2 (the VXLAN peer)
//          and 192.0.2.50 (a stranger)
const GW = 'meshnet_gwbr';
const VNI = 4096;
const lab = new MeshLab('mesh-fw');
let host = '';
let task1 = '';
let lan = '';
let writer: IptablesWriter;

const firewall: HostFirewallInput = {
  gwbridge: { name: GW, subnet: '172.18.0.0/16' },
  legs: [
    { hostIf: 'mn-sbox', address: '172.18.0.2' },
    { hostIf: 'mgt1', address: '172.18.0.3' },
    { hostIf: 'mgt2', address: '172.18.0.4' },
  ],
  vxlanPeers: ['192.0.2.2', '192.0.2.3'],
};

const meshPlan = computeMeshPlan({
  node: labMeshNode(GW),
  services: [
    { id: 'web', name: 'web', ports: [{ published: 8000, target: 80, protocol: 'tcp', mode: 'ingress', policy: 'cluster' }] },
    { id: 'metrics', name: 'metrics', ports: [{ published: 9100, target: 9101, protocol: 'tcp', mode: 'host', policy: 'cluster' }] },
  ],
  tasks: [{ id: 'metrics.1', serviceId: 'metrics', nodeId: 'n1', state: 'running', gwbridgeAddress: '172.18.0.4' }],
});

/** HTTP GET from a namespace; code 0 and the body when it answered. */
async function get(netns: string, url: string, maxTime = 3): Promise<{ code: number; body: string }> {
  const r = await execIn(netns, ['curl', '-sS', '--max-time', String(maxTime), url], { allowFailure: true });
  return { code: r.code, body: r.stdout.trim() };
}

/** A GET that must not be answered: a short deadline, since nothing will come. */
async function blocked(netns: string, url: string): Promise<boolean> {
  return (await get(netns, url, 1.5)).code !== 0;
}

/** One UDP datagram from `from` (an address of the namespace), the reply or '' after 1.5 s. */
async function udpFrom(netns: string, from: string, to: string, port: number, text: string): Promise<string> {
  const script = `
const s = require('node:dgram').createSocket('udp4');
const t = setTimeout(() => process.exit(1), 1500);
s.on('message', (m) => { process.stdout.write(m.toString()); clearTimeout(t); s.close(); });
s.bind(0, ${JSON.stringify(from)}, () => s.send(${JSON.stringify(text)}, ${port}, ${JSON.stringify(to)}));`;
  return (await execIn(netns, ['node', '-e', script], { allowFailure: true, timeoutMs: 5000 })).stdout.trim();
}

/** A VXLAN datagram (an ARP request inside) sent from `from` to the host's VXLAN port. */
async function sendVxlan(from: string): Promise<void> {
  const script = `
const vxlan = Buffer.from([0x08, 0, 0, 0, ${VNI >> 16}, ${(VNI >> 8) & 255}, ${VNI & 255}, 0]);
const eth = Buffer.alloc(60);
Buffer.from('ffffffffffff0242c0a8000906080001080006040001', 'hex').copy(eth, 0);
const s = require('node:dgram').createSocket('udp4');
s.bind(0, ${JSON.stringify(from)}, () => s.send(Buffer.concat([vxlan, eth]), 4789, '192.0.2.1', () => s.close()));`;
  await execIn(lan, ['node', '-e', script], { timeoutMs: 5000 });
}

async function vxRxPackets(): Promise<number> {
  const [link] = JSON.parse((await execIn(host, ['ip', '-j', '-s', 'link', 'show', 'vx0'])).stdout) as { stats64: { rx: { packets: number } } }[];
  return link!.stats64.rx.packets;
}

/** Packets counted by a rule of a meshnet chain, found by a fragment of its text. */
async function counter(table: string, chain: string, fragment: string | RegExp): Promise<number> {
  const out = (await execIn(host, ['iptables', '-t', table, '-v', '-x', '-n', '-L', chain])).stdout;
  const line = out.split('\n').find((l) => (typeof fragment === 'string' ? l.includes(fragment) : fragment.test(l)));
  if (!line) throw new Error(`no rule with ${fragment} in ${table}/${chain}:\n${out}`);
  return Number(line.trim().split(/\s+/)[0]);
}

/** Waits until `read` returns at least `min` (counters are bumped asynchronously to the send). */
async function waitFor(read: () => Promise<number>, min: number): Promise<number> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const v = await read();
    if (v >= min || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Makes `netns` send packets for 127.0.0.1 out of `dev` to `via`, as an attacker that owns the namespace can. */
async function routeLoopbackOut(netns: string, dev: string, via: string, src: string): Promise<void> {
  for (const args of [
    'rule add to 127.0.0.1 lookup 100 pref 10',
    'rule del pref 0',
    'rule add lookup local pref 20',
    `route add 127.0.0.1/32 via ${via} dev ${dev} src ${src} table 100`,
  ]) {
    await lab.ip(netns, args);
  }
  // Accept the replies, which come from 127.0.0.1.
  await execIn(netns, ['sysctl', '-qw', `net.ipv4.conf.${dev}.route_localnet=1`, 'net.ipv4.conf.all.route_localnet=1']);
}

describe('the host firewall meshnet owns, in namespaces', () => {
  beforeAll(async () => {
    host = await lab.netns('host');
    const sbox = await lab.netns('sbox');
    task1 = await lab.netns('task1');
    const task2 = await lab.netns('task2');
    lan = await lab.netns('lan');
    // nf_call_iptables: bridged leg-to-leg frames pass iptables on this bridge (see gwbridgeIsolationSysctls).
    await lab.ip(host, `link add ${GW} type bridge nf_call_iptables 1`);
    await lab.ip(host, `addr add 172.18.0.1/16 dev ${GW}`);
    await lab.ip(host, `link set ${GW} up`);
    for (const [ns, hostIf, ip] of [
      [sbox, 'mn-sbox', '172.18.0.2'],
      [task1, 'mgt1', '172.18.0.3'],
      [task2, 'mgt2', '172.18.0.4'],
    ] as const) {
      await lab.veth({ netns: host, name: hostIf }, { netns: ns, name: 'eth1', cidr: `${ip}/16` });
      await lab.ip(host, `link set ${hostIf} master ${GW}`);
      await lab.ip(ns, 'route add default via 172.18.0.1');
    }
    await lab.veth({ netns: host, name: 'eth0', cidr: '192.0.2.1/24' }, { netns: lan, name: 'eth0', cidr: '192.0.2.100/24' });
    await lab.ip(lan, 'addr add 192.0.2.2/24 dev eth0');
    await lab.ip(lan, 'addr add 192.0.2.50/24 dev eth0');
    await lab.ip(host, `link add vx0 type vxlan id ${VNI} dstport 4789 local 192.0.2.1 dev eth0 nolearning`);
    await lab.ip(host, 'link set vx0 up');

    await lab.start(sbox, standInServerArgv('sbox', [8000]));
    await lab.start(task2, standInServerArgv('task2', [80, 9101]));
    await lab.start(lan, standInServerArgv('lan', [8080]));
    await lab.start(host, standInServerArgv('host-udp', [], [6000]));
    const onlyLoopback = `require('node:http').createServer((q, s) => s.end('loopback ' + q.socket.remoteAddress + '\\n')).listen(7000, '127.0.0.1', () => console.log('ready'));`;
    await lab.start(host, ['node', '-e', onlyLoopback]);

    writer = new IptablesWriter({ netns: host });
    applySysctls(host, meshPlan.host.sysctls);
    await applyHostRules(writer, meshPlan.host);
    await routeLoopbackOut(task1, 'eth1', '172.18.0.1', '172.18.0.3');
    await routeLoopbackOut(lan, 'eth0', '192.0.2.1', '192.0.2.100');
    await lab.ip(task1, 'addr add 172.18.0.99/32 dev eth1');
  });

  afterAll(async () => {
    await lab.destroy();
  });

  it('without it, every hole of issue 11 is open (so the checks below can fail)', async () => {
    expect(await get(task1, 'http://172.18.0.4/')).toEqual({ code: 0, body: 'task2 80 172.18.0.3' });
    await lab.ip(lan, 'route add 172.18.0.0/16 via 192.0.2.1');
    expect(await get(lan, 'http://172.18.0.4/')).toEqual({ code: 0, body: 'task2 80 192.0.2.100' });
    expect(await get(task1, 'http://127.0.0.1:7000/')).toEqual({ code: 0, body: 'loopback 172.18.0.3' });
    expect(await get(lan, 'http://127.0.0.1:8000/')).toEqual({ code: 0, body: 'sbox 8000 192.0.2.100' });
    expect(await udpFrom(task1, '172.18.0.99', '172.18.0.1', 6000, 'spoofed')).toBe('host-udp 6000 172.18.0.99 spoofed');
    const rx = await vxRxPackets();
    await sendVxlan('192.0.2.50');
    expect(await waitFor(vxRxPackets, rx + 1)).toBe(rx + 1);
  });

  it('applies as three owners; a new writer reads them back equal, and a resync writes nothing', async () => {
    applySysctls(host, hostFirewallSysctls());
    expect(getSysctl(host, 'net.bridge.bridge-nf-call-iptables')).toBe('1');
    for (const set of hostFirewallRuleSets(firewall)) expect((await writer.apply(set)).changed).toBe(true);
    // A restarted agent's writer reads the kernel: what iptables-save prints compares equal to what was written.
    const fresh = new IptablesWriter({ netns: host });
    for (const set of hostFirewallRuleSets(firewall)) {
      expect(await fresh.apply(set)).toMatchObject({ changed: false, readKernel: true });
      expect(await writer.apply(set, { resync: true })).toMatchObject({ changed: false });
    }
  });

  it('route_localnet guard: nothing from outside reaches 127.0.0.0/8; localhost still does', async () => {
    expect(await blocked(task1, 'http://127.0.0.1:7000/')).toBe(true);
    expect(await blocked(lan, 'http://127.0.0.1:8000/')).toBe(true);
    // Dropped before nat PREROUTING could DNAT the neighbour's packet to the sandbox.
    expect(await counter('mangle', 'MESHNET-LOCALNET', 'DROP')).toBeGreaterThan(0);
    expect(await get(host, 'http://127.0.0.1:7000/')).toEqual({ code: 0, body: 'loopback 127.0.0.1' });
    expect(await get(host, 'http://127.0.0.1:8000/')).toEqual({ code: 0, body: 'sbox 8000 172.18.0.1' });
  });

  it('isolation: no task reaches another through the gwbridge, no neighbour routes into it', async () => {
    expect(await blocked(task1, 'http://172.18.0.4/')).toBe(true);
    expect(await blocked(task1, 'http://172.18.0.2:8000/')).toBe(true);
    expect(await blocked(lan, 'http://172.18.0.4/')).toBe(true);
    expect(await counter('filter', 'MESHNET-ISOLATION', new RegExp(`DROP\\s+\\S+\\s+\\S+\\s+${GW}\\s+${GW}\\s`))).toBeGreaterThan(0);
  });

  it('published ports (ingress and mode=host), a task using one, and task egress still work', async () => {
    expect(await get(lan, 'http://192.0.2.1:8000/')).toEqual({ code: 0, body: 'sbox 8000 192.0.2.100' });
    expect(await get(lan, 'http://192.0.2.1:9100/')).toEqual({ code: 0, body: 'task2 9101 192.0.2.100' });
    expect(await get(task1, 'http://192.0.2.1:8000/')).toEqual({ code: 0, body: 'sbox 8000 172.18.0.3' });
    expect(await get(task1, 'http://192.0.2.100:8080/')).toEqual({ code: 0, body: 'lan 8080 192.0.2.1' });
  });

  it('anti-spoofing: a leg sending from an address not its own is dropped; its own address passes', async () => {
    const before = await counter('mangle', 'MESHNET-ANTISPOOF', 'mgt1');
    expect(await udpFrom(task1, '172.18.0.99', '172.18.0.1', 6000, 'spoofed')).toBe('');
    expect(await counter('mangle', 'MESHNET-ANTISPOOF', 'mgt1')).toBeGreaterThan(before);
    expect(await udpFrom(task1, '172.18.0.3', '172.18.0.1', 6000, 'honest')).toBe('host-udp 6000 172.18.0.3 honest');
  });

  it('VXLAN: a datagram from an unknown address is dropped, one from a peer reaches the VXLAN device', async () => {
    const dropped = await counter('filter', 'MESHNET-VXLAN', 'DROP');
    const rx = await vxRxPackets();
    await sendVxlan('192.0.2.50');
    expect(await waitFor(() => counter('filter', 'MESHNET-VXLAN', 'DROP'), dropped + 1)).toBe(dropped + 1);
    expect(await vxRxPackets()).toBe(rx);
    await sendVxlan('192.0.2.2');
    expect(await waitFor(vxRxPackets, rx + 1)).toBe(rx + 1);
    expect(await counter('filter', 'MESHNET-VXLAN', 'DROP')).toBe(dropped + 1);
  });

  it('a peer that leaves loses VXLAN; the empty sets remove every rule and chain of the firewall', async () => {
    await writer.apply(hostFirewallRuleSets({ ...firewall, vxlanPeers: ['192.0.2.3'] })[2]!);
    const rx = await vxRxPackets();
    await sendVxlan('192.0.2.2');
    expect(await waitFor(() => counter('filter', 'MESHNET-VXLAN', 'DROP'), 1)).toBeGreaterThan(0);
    expect(await vxRxPackets()).toBe(rx);

    for (const set of emptyHostFirewallRuleSets()) expect((await writer.apply(set)).changed).toBe(true);
    const saved = (await execIn(host, ['iptables-save'])).stdout;
    expect(saved).not.toMatch(/meshnet-(localnet|isolation|vxlan)|MESHNET-(LOCALNET|ISOLATION|ANTISPOOF|VXLAN)/);
    // The mesh's own rules were left alone.
    expect(saved).toContain('-j DOCKER-INGRESS');
  });
});
