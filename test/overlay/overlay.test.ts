import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Lab } from '../lab/lab.js';
import { OverlayDriver } from '../../src/overlay/overlay-driver.js';
import type { LocalEndpoint, OverlayInput, RemoteEndpoint } from '../../src/overlay/overlay-spec.js';
import { macForIpv4 } from '../../src/sandbox/addresses.js';
import { NamespaceNotFoundError, InvalidSandboxInputError } from '../../src/sandbox/errors.js';
import { Rtnl } from '../../src/sandbox/rtnl.js';

const network = { name: 'appnet', vni: 4242, subnet: '10.42.0.0/24', gateway: '10.42.0.1' };
const SERVER = "require('http').createServer((q,s)=>s.end(process.env.NAME)).listen(80,'0.0.0.0')";

interface Container {
  name: string;
  host: number;
  ip: string;
  netns: string;
}

let lab: Lab;
const containers: Container[] = [];
const drivers: OverlayDriver[] = [];
const before = { netns: '', links: '' };

/** What each host should hold: its own containers as local endpoints, everyone else's as peers. */
function inputFor(hostIndex: number, present: Container[]): OverlayInput {
  const local: LocalEndpoint[] = present
    .filter((c) => c.host === hostIndex)
    .map((c) => ({ id: c.name, sandbox: c.netns, ifname: 'eth0', ip: c.ip, mac: macForIpv4(c.ip) }));
  const remote: RemoteEndpoint[] = present
    .filter((c) => c.host !== hostIndex)
    .map((c) => ({ ip: c.ip, mac: macForIpv4(c.ip), vtep: lab.hosts[c.host]!.underlayIp }));
  return { network, underlayMtu: 1500, localVtep: lab.hosts[hostIndex]!.underlayIp, local, remote };
}

async function applyAll(present: Container[]): Promise<number[]> {
  const counts: number[] = [];
  for (let h = 0; h < 3; h++) counts.push((await drivers[h]!.apply(inputFor(h, present))).ops.length);
  return counts;
}

beforeAll(async () => {
  before.netns = execFileSync('ip', ['netns', 'list']).toString();
  before.links = execFileSync('ip', ['-o', 'link']).toString().replace(/\s+link\/.*$/gm, '');
  lab = await Lab.create(3, { tag: 'overlay' });
  let n = 2;
  for (let h = 0; h < 3; h++) {
    drivers.push(new OverlayDriver({ netnsDir: lab.hosts[h]!.dir, hostNetns: lab.hosts[h]!.netns }));
    for (let k = 0; k < 2; k++) {
      const name = `c${h}${k}`;
      const c = { name, host: h, ip: `10.42.0.${n++}`, netns: lab.netns(name, h) };
      containers.push(c);
    }
  }
  await applyAll(containers);
  for (const c of containers) {
    const child = lab.spawn(c.netns, [process.execPath, '-e', SERVER], { NAME: c.name });
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[${c.name}] ${d}`));
  }
  // Wait until every server listens.
  for (const c of containers) {
    await lab.waitForHttp(c.netns, `http://${c.ip}/`);
  }
});

afterAll(async () => {
  await lab?.destroy();
});

describe('VXLAN overlay across three hosts', () => {
  it('builds br0 and vxlan0 in the overlay namespace as specified', async () => {
    const r = Rtnl.open(lab.hosts[0]!.dir.path('ov-appnet'));
    try {
      const links = await r.links();
      const br = links.find((l) => l.name === 'br0')!;
      const vx = links.find((l) => l.name === 'vxlan0')!;
      expect(br).toMatchObject({ kind: 'bridge', mtu: 1450, up: true });
      expect(vx).toMatchObject({ kind: 'vxlan', mtu: 1450, up: true, master: br.index });
      expect(vx.vxlan).toEqual({ vni: 4242, port: 4789, learning: false, proxy: true, local: lab.hosts[0]!.underlayIp });
      expect(await r.addresses()).toContainEqual({ link: 'br0', cidr: '10.42.0.1/24' });
      expect(links.filter((l) => l.kind === 'veth' && l.master === br.index)).toHaveLength(2);
      expect((await r.fdb('vxlan0')).filter((f) => f.dst)).toHaveLength(4);
      expect(await r.neighbors('vxlan0')).toHaveLength(4);
    } finally {
      r.close();
    }
  });

  it('a second apply of the same state changes nothing', async () => {
    expect(await applyAll(containers)).toEqual([0, 0, 0]);
  });

  it('every container reaches every other by ping and HTTP', async () => {
    const table: string[] = [];
    for (const from of containers) {
      const targets = containers.filter((c) => c !== from).map((c) => c.ip);
      const script = targets
        .map((ip) => `ping -c1 -W2 -q ${ip} >/dev/null && printf 'ping-ok ' || printf 'ping-FAIL '; curl -s -m3 http://${ip}/; echo`)
        .join('; ');
      const out = await lab.exec(from.netns, ['sh', '-c', script]);
      const lines = out.stdout.trim().split('\n');
      expect(lines).toHaveLength(5);
      lines.forEach((line, i) => {
        const target = containers.find((c) => c.ip === targets[i])!;
        expect(line).toBe(`ping-ok ${target.name}`);
      });
      table.push(`${from.name}: ${lines.length} ok`);
    }
    expect(table).toHaveLength(6);
  });

  it('a 1400-byte packet crosses hosts without fragmentation (DF set)', async () => {
    // 1372 bytes of ICMP payload + 28 bytes of headers = 1400 bytes on the 1450-byte overlay.
    const out = await lab.exec(containers[0]!.netns, ['ping', '-c2', '-W2', '-M', 'do', '-s', '1372', containers[5]!.ip]);
    expect(out.stdout).toContain('2 received');
    const tooBig = await lab.exec(containers[0]!.netns, ['ping', '-c1', '-W2', '-M', 'do', '-s', '1430', containers[5]!.ip], { allowFailure: true });
    expect(tooBig.code).not.toBe(0);
  });

  it("a host whose advertise address moves sends from the new one, and every container still reaches it", async () => {
    const host = lab.hosts[0]!;
    const old = host.underlayIp;
    const moved = old.replace(/\.\d+$/, '.201');
    const localOf = async (): Promise<string | undefined> => {
      const r = Rtnl.open(host.dir.path('ov-appnet'));
      try {
        return (await r.links()).find((l) => l.name === 'vxlan0')?.vxlan?.local;
      } finally {
        r.close();
      }
    };
    await lab.exec(host.netns, ['ip', 'addr', 'add', `${moved}/24`, 'dev', 'eth0']);
    try {
      host.underlayIp = moved;
      await applyAll(containers);
      expect(await localOf()).toBe(moved);
      // Host 0's containers answer host 1's, over VXLAN datagrams that now come from (and go to) the new address.
      const out = await lab.exec(containers[2]!.netns, ['sh', '-c', `curl -s -m3 http://${containers[0]!.ip}/; echo; curl -s -m3 http://${containers[1]!.ip}/`]);
      expect(out.stdout.trim().split('\n')).toEqual(['c00', 'c01']);
    } finally {
      host.underlayIp = old;
      await applyAll(containers);
      await lab.exec(host.netns, ['ip', 'addr', 'del', `${moved}/24`, 'dev', 'eth0']);
    }
    expect(await localOf()).toBe(old);
    expect(await applyAll(containers)).toEqual([0, 0, 0]);
  });

  it('removing a container removes its peer entries on the other hosts', async () => {
    const gone = containers[5]!; // c21 on host-c
    const present = containers.filter((c) => c !== gone);
    const counts = await applyAll(present);
    expect(counts[0]).toBe(2); // neighbour + FDB on host-a
    expect(counts[1]).toBe(2);
    expect(counts[2]).toBe(1); // its veth on host-c
    for (const h of [0, 1]) {
      const r = Rtnl.open(lab.hosts[0]!.dir.path('ov-appnet'));
      r.close();
      const ov = await lab.exec(lab.hosts[h]!.netns, ['true']);
      expect(ov.code).toBe(0);
    }
    const fdbA = await lab.exec(containers[0]!.netns, ['ping', '-c1', '-W1', gone.ip], { allowFailure: true });
    expect(fdbA.code).not.toBe(0);
    containers.splice(5, 1);
  });

  it('removing the last endpoint behind a VTEP leaves no entry for that VTEP', async () => {
    const hostC = lab.hosts[2]!.underlayIp;
    const present = containers.filter((c) => c.host !== 2);
    await applyAll(present);
    for (const h of [0, 1]) {
      const fdb = await lab.exec(lab.hosts[h]!.dir.path('ov-appnet'), ['bridge', 'fdb', 'show', 'dev', 'vxlan0']);
      expect(fdb.stdout).not.toContain(hostC);
      expect(fdb.stdout).toContain(lab.hosts[1 - h]!.underlayIp);
    }
  });

  it('rejects bad input before touching the kernel', async () => {
    const dup = inputFor(0, containers);
    dup.remote.push({ ip: containers[0]!.ip, mac: '02:42:0a:2a:00:63', vtep: '192.0.2.9' });
    await expect(drivers[0]!.apply(dup)).rejects.toThrow(InvalidSandboxInputError);
    const missing = inputFor(0, containers);
    missing.local.push({ id: 'ghost', sandbox: `${lab.hosts[0]!.dir.dir}/ghost`, ifname: 'eth0', ip: '10.42.0.77', mac: macForIpv4('10.42.0.77') });
    await expect(drivers[0]!.apply(missing)).rejects.toThrow(NamespaceNotFoundError);
    const badVni = inputFor(0, containers);
    badVni.network = { ...network, vni: 0 };
    await expect(drivers[0]!.apply(badVni)).rejects.toThrow(/VNI 0/);
    expect(await drivers[0]!.apply(inputFor(0, containers.filter((c) => c.host !== 2)))).toMatchObject({ ops: [] });
  });

  it('teardown leaves ip netns list and the root links as they were', async () => {
    await lab.destroy();
    expect(execFileSync('ip', ['netns', 'list']).toString()).toBe(before.netns);
    expect(execFileSync('ip', ['-o', 'link']).toString().replace(/\s+link\/.*$/gm, '')).toBe(before.links);
  });
});
