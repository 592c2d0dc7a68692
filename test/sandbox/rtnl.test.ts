import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { homeNetnsIdentity, inNetnsAsync, netnsIdentity, withNetns } from '../../src/sandbox/netns-switch.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { Rtnl } from '../../src/sandbox/rtnl.js';
import { execIn } from '../../src/sandbox/exec.js';
import { HostNamespaceRefusedError, NamespaceNotFoundError, NetlinkError, InvalidSandboxInputError } from '../../src/sandbox/errors.js';
import { ensureSysctl, getSysctl, setSysctl } from '../../src/sandbox/sysctl.js';

const root = `/run/meshnet-test-rtnl-${randomBytes(3).toString('hex')}`;
const dir = new NetnsDir(`${root}/netns`);
let a: string;
let b: string;

beforeAll(() => {
  a = dir.create('a');
  b = dir.create('b');
});
afterAll(() => {
  dir.removeAll();
  rmSync(root, { recursive: true, force: true });
});

describe('namespaces', () => {
  it('lists, adopts an existing one and deletes idempotently', () => {
    expect(dir.list()).toEqual(['a', 'b']);
    expect(dir.create('a')).toBe(a);
    dir.delete('missing-one');
    expect(() => dir.path('../etc')).toThrow(InvalidSandboxInputError);
  });

  it('keeps sysctls per namespace', () => {
    setSysctl(a, 'net.ipv4.ip_forward', 1);
    expect(getSysctl(a, 'net.ipv4.ip_forward')).toBe('1');
    expect(getSysctl(b, 'net.ipv4.ip_forward')).toBe('0');
  });

  it('writes a sysctl only when it holds another value, whitespace aside', () => {
    expect(ensureSysctl(b, 'net.ipv4.ip_forward', '1')).toBe(true);
    expect(getSysctl(b, 'net.ipv4.ip_forward')).toBe('1');
    expect(ensureSysctl(b, 'net.ipv4.ip_forward', 1)).toBe(false);
    // The kernel prints a range with a tab: the same range spelt with a space is no change.
    expect(ensureSysctl(b, 'net.ipv4.ip_local_port_range', '20000 30000')).toBe(true);
    expect(getSysctl(b, 'net.ipv4.ip_local_port_range')).toBe('20000\t30000');
    expect(ensureSysctl(b, 'net.ipv4.ip_local_port_range', '20000 30000')).toBe(false);
    setSysctl(b, 'net.ipv4.ip_forward', 0);
  });

  it('steps the main thread in only for synchronous work; async stays in worker threads (the DNS workers)', async () => {
    expect(withNetns(a, () => netnsIdentity('/proc/thread-self/ns/net'))).toBe(netnsIdentity(a));
    expect(() => withNetns(a, () => withNetns(b, () => 1))).toThrow(/cannot nest/);
    expect(() => withNetns(a, async () => 1)).toThrow(/synchronous code only/);
    await expect(inNetnsAsync(a, async () => 1)).rejects.toThrow(/worker threads/);
    expect(netnsIdentity('/proc/thread-self/ns/net')).toBe(homeNetnsIdentity());
  });

  it('refuses a namespace that does not exist', () => {
    expect(() => Rtnl.open(`${root}/netns/nope`)).toThrow(NamespaceNotFoundError);
  });
});

describe('rtnl', () => {
  it('builds a veth pair across namespaces with addresses and routes, and traffic crosses', async () => {
    const ra = Rtnl.open(a);
    const rb = Rtnl.open(b);
    try {
      await ra.setLink('lo', { up: true });
      await ra.createVeth('va', 'vb', { peerNetns: b, mtu: 1400 });
      await ra.addAddress('va', '198.51.100.1/24');
      await ra.addAddress('va', '198.51.100.1/24'); // idempotent
      await ra.setLink('va', { up: true });
      await rb.addAddress('vb', '198.51.100.2/24');
      await rb.setLink('vb', { up: true });
      await rb.replaceRoute({ dst: 'default', gateway: '198.51.100.1' });
      await rb.replaceRoute({ dst: 'default', gateway: '198.51.100.1' }); // replace, not duplicate
      const vb = await rb.requireLink('vb');
      expect(vb.mtu).toBe(1400);
      expect(vb.kind).toBe('veth');
      expect(await rb.addresses()).toContainEqual({ link: 'vb', cidr: '198.51.100.2/24' });
      const ping = await execIn(b, ['ping', '-c1', '-W2', '198.51.100.1']);
      expect(ping.stdout).toContain('1 received');
      const routes = await execIn(b, ['ip', 'route', 'show', 'default']);
      expect(routes.stdout.trim().split('\n')).toHaveLength(1);
    } finally {
      ra.close();
      rb.close();
    }
  });

  it('creates a bridge and a vxlan device with static neighbour and FDB entries', async () => {
    const r = Rtnl.open(a);
    try {
      await r.createBridge('br0', { mtu: 1450 });
      await r.createVxlan({ name: 'vxlan0', vni: 4097, port: 4789, learning: false, proxy: true, mtu: 1450 });
      await r.setLink('vxlan0', { master: 'br0', up: true });
      const vx = await r.requireLink('vxlan0');
      expect(vx.vxlan).toEqual({ vni: 4097, port: 4789, learning: false, proxy: true });
      expect(vx.master).toBe((await r.requireLink('br0')).index);
      await r.replaceNeighbor('vxlan0', '10.0.9.5', '02:42:0a:00:09:05');
      await r.replaceNeighbor('vxlan0', '10.0.9.5', '02:42:0a:00:09:05');
      await r.replaceFdb('vxlan0', '02:42:0a:00:09:05', '192.0.2.7');
      expect(await r.neighbors('vxlan0')).toEqual([{ link: 'vxlan0', ip: '10.0.9.5', mac: '02:42:0a:00:09:05', permanent: true }]);
      expect((await r.fdb('vxlan0')).filter((f) => f.dst)).toEqual([
        { link: 'vxlan0', mac: '02:42:0a:00:09:05', dst: '192.0.2.7', permanent: true },
      ]);
      await r.deleteFdb('vxlan0', '02:42:0a:00:09:05', '192.0.2.7');
      await r.deleteNeighbor('vxlan0', '10.0.9.5');
      await r.deleteNeighbor('vxlan0', '10.0.9.5'); // idempotent
      expect(await r.neighbors('vxlan0')).toEqual([]);
      expect((await r.fdb('vxlan0')).filter((f) => f.dst)).toEqual([]);
      expect(await r.deleteLink('vxlan0')).toBe(true);
      expect(await r.deleteLink('vxlan0')).toBe(false);
    } finally {
      r.close();
    }
  });

  it('lists, adds and deletes routes of a table and source rules, missing being fine', async () => {
    const r = Rtnl.open(b);
    try {
      await r.replaceRoute({ dst: '203.0.113.0/24', dev: 'vb', table: 3000 });
      await r.replaceRoute({ dst: 'default', gateway: '198.51.100.1', dev: 'vb', table: 3000 });
      const vb = await r.requireLink('vb');
      expect(await r.routes({ table: 3000 })).toEqual([
        { dst: 'default', table: 3000, gateway: '198.51.100.1', oif: vb.index, dev: 'vb' },
        { dst: '203.0.113.0/24', table: 3000, oif: vb.index, dev: 'vb' },
      ]);
      expect((await r.routes()).some((x) => x.table === 254 && x.dst === 'default')).toBe(true);
      await r.addRule({ from: '198.51.100.2', table: 3000, priority: 3000 });
      await r.replaceRule({ from: '198.51.100.2', table: 3000, priority: 3000 }); // present: no duplicate
      expect((await r.rules()).filter((x) => x.priority === 3000)).toEqual([{ from: '198.51.100.2', table: 3000, priority: 3000 }]);
      expect(await r.deleteRule({ from: '198.51.100.2', table: 3000, priority: 3000 })).toBe(true);
      expect(await r.deleteRule({ from: '198.51.100.2', table: 3000, priority: 3000 })).toBe(false);
      // A link-scope route and a gateway route both go (a delete matches any scope).
      expect(await r.deleteRoute({ dst: '203.0.113.0/24', table: 3000 })).toBe(true);
      expect(await r.deleteRoute({ dst: 'default', table: 3000 })).toBe(true);
      expect(await r.deleteRoute({ dst: 'default', table: 3000 })).toBe(false);
      expect(await r.routes({ table: 3000 })).toEqual([]);
      expect((await execIn(b, ['ip', 'rule', 'show', 'pref', '3000'])).stdout.trim()).toBe('');
    } finally {
      r.close();
    }
  });

  it('adds IPv6 addresses usable at once (no DAD wait) and permanent IPv6 neighbours, missing being fine', async () => {
    for (const [ns, dev] of [[a, 'va'], [b, 'vb']] as const) {
      for (const conf of ['all', 'default', dev]) setSysctl(ns, `net.ipv6.conf.${conf}.disable_ipv6`, 0);
    }
    const ra = Rtnl.open(a);
    const rb = Rtnl.open(b);
    try {
      await ra.replaceAddress6('va', 'FD00:db8:0:0::1/64');
      await ra.replaceAddress6('va', 'fd00:db8::1/64'); // replace: idempotent
      await rb.replaceAddress6('vb', 'fd00:db8::2/64');
      expect(await ra.addresses6()).toEqual([{ link: 'va', cidr: 'fd00:db8::1/64' }]); // global scope only, canonical text
      expect((await execIn(a, ['ip', '-6', 'addr', 'show', 'dev', 'va', 'scope', 'global'])).stdout).toMatch(/inet6 fd00:db8::1\/64 scope global nodad\s*\n/);
      // Usable at once: a tentative address could neither send nor answer.
      await execIn(b, ['ping', '-6', '-c', '1', '-W', '2', 'fd00:db8::1']);
      await rb.replaceNeighbor6('vb', 'fd00:db8::9', '02:42:0a:00:09:09');
      await rb.replaceNeighbor6('vb', 'fd00:db8::9', '02:42:0a:00:09:0a');
      expect((await rb.neighbors6('vb')).filter((n) => n.permanent)).toEqual([{ link: 'vb', ip: 'fd00:db8::9', mac: '02:42:0a:00:09:0a', permanent: true }]);
      await rb.deleteNeighbor6('vb', 'fd00:db8::9');
      await rb.deleteNeighbor6('vb', 'fd00:db8::9'); // idempotent
      expect((await rb.neighbors6('vb')).filter((n) => n.permanent)).toEqual([]);
      await ra.deleteAddress6('va', 'fd00:db8::1/64');
      await ra.deleteAddress6('va', 'fd00:db8::1/64'); // idempotent
      expect(await ra.addresses6()).toEqual([]);
      await expect(ra.replaceAddress6('va', 'fd00::1/129')).rejects.toThrow(InvalidSandboxInputError);
      await expect(ra.replaceNeighbor6('va', '10.0.0.1', '02:42:0a:00:09:09')).rejects.toThrow(/invalid IPv6 address/);
    } finally {
      ra.close();
      rb.close();
    }
  });

  it('turns kernel refusals into typed errors that name the object', async () => {
    const r = Rtnl.open(a);
    try {
      await r.createBridge('dup0');
      const err = await r.createBridge('dup0').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NetlinkError);
      expect((err as NetlinkError).errno).toBe('EEXIST');
      expect((err as NetlinkError).message).toContain('bridge dup0');
      const missing = await r.setLink('nosuch0', { up: true }).catch((e: unknown) => e);
      expect((missing as NetlinkError).errno).toBe('ENODEV');
      await expect(r.addAddress('dup0', '10.0.0.300/24')).rejects.toThrow(InvalidSandboxInputError);
      await expect(r.replaceNeighbor('dup0', '10.0.0.1', 'zz:zz')).rejects.toThrow(/invalid MAC/);
    } finally {
      r.close();
    }
  });

  it('refuses to write to the namespace the process runs in unless told it is the host namespace', async () => {
    const r = Rtnl.open(null);
    try {
      expect((await r.links()).some((l) => l.name === 'lo')).toBe(true);
      await expect(r.createBridge('mnguard0')).rejects.toThrow(HostNamespaceRefusedError);
    } finally {
      r.close();
    }
  });
});

describe('bridge ports', () => {
  it('isolated ports exchange no frames with each other (IPv6 link-local too), and the flag reads back', async () => {
    const br = dir.create('br');
    const t1 = dir.create('t1');
    const t2 = dir.create('t2');
    const r = Rtnl.open(br);
    try {
      await r.createBridge('br0');
      await r.setLink('br0', { up: true });
      for (const [i, ns] of [t1, t2].entries()) {
        await r.createVeth(`leg${i}`, 'eth0', { peerNetns: ns });
        await r.setLink(`leg${i}`, { master: 'br0', up: true });
        const t = Rtnl.open(ns);
        try {
          await t.addAddress('eth0', `192.168.77.${i + 1}/24`);
          await t.setLink('eth0', { up: true });
        } finally {
          t.close();
        }
      }
      const ping = () => execIn(t1, ['ping', '-c', '1', '-W', '1', '192.168.77.2'], { allowFailure: true });
      expect((await ping()).code).toBe(0);
      await r.setBridgePort('leg0', { isolated: true });
      await r.setBridgePort('leg1', { isolated: true });
      expect(await r.bridgePortIsolated('leg0')).toBe(true);
      await execIn(t1, ['ip', 'neigh', 'flush', 'all']);
      expect((await ping()).code).not.toBe(0);
      await r.setBridgePort('leg1', { isolated: false });
      expect(await r.bridgePortIsolated('leg1')).toBe(false);
      // The failed resolution above left a FAILED neighbour entry: start afresh, and allow ARP a retry.
      await execIn(t1, ['ip', 'neigh', 'flush', 'all']);
      expect((await execIn(t1, ['ping', '-c', '3', '-i', '0.2', '-W', '1', '192.168.77.2'], { allowFailure: true })).stdout).toMatch(/[1-3] received/);
    } finally {
      r.close();
    }
  });
});
