import { describe, expect, it } from 'vitest';
import type { LbTable } from '../lb-table.js';
import type { IpvsDest, IpvsDestKey, IpvsDestStatus, IpvsService, IpvsServiceKey, IpvsTimeouts } from './codec.js';
import { fakeIptablesRunner } from '../../mesh/fake-iptables.test-helper.js';
import { IptablesWriter } from '../../mesh/iptables-writer.js';
import { IpvsBackend, type IpvsKernel } from './ipvs-backend.js';
import { serviceKeyId } from './ipvs-plan.js';
import { ipvsSysctls, ipvsSysctlTargets, ipvsTimeouts } from './ipvs-tuning.js';

/** An in-memory IPVS that refuses what the kernel refuses (duplicates, unknown objects). */
class FakeIpvs implements IpvsKernel {
  services = new Map<string, { service: IpvsService; dests: Map<string, IpvsDest> }>();
  timeouts: IpvsTimeouts = { tcp: 900, tcpFin: 120, udp: 300 };
  calls: string[] = [];
  private svc(k: IpvsServiceKey) {
    const s = this.services.get(serviceKeyId(k));
    if (!s) throw new Error('ESRCH');
    return s;
  }
  async listServices() {
    return [...this.services.values()].map((s) => s.service);
  }
  async listDests(k: IpvsServiceKey): Promise<IpvsDestStatus[]> {
    return [...this.svc(k).dests.values()].map((d) => ({ ...d, activeConns: 0, inactiveConns: 0, persistConns: 0 }));
  }
  async addService(s: IpvsService) {
    this.calls.push(`addService ${serviceKeyId(s.key)}`);
    if (this.services.has(serviceKeyId(s.key))) throw new Error('EEXIST');
    this.services.set(serviceKeyId(s.key), { service: s, dests: new Map() });
  }
  async updateService(s: IpvsService) {
    this.calls.push(`updateService ${serviceKeyId(s.key)}`);
    this.svc(s.key).service = s;
  }
  async deleteService(k: IpvsServiceKey) {
    this.calls.push(`deleteService ${serviceKeyId(k)}`);
    this.svc(k);
    this.services.delete(serviceKeyId(k));
  }
  async addDest(k: IpvsServiceKey, d: IpvsDest) {
    this.calls.push(`addDest ${d.address}:${d.port} w${d.weight}`);
    const s = this.svc(k);
    if (s.dests.has(`${d.address}:${d.port}`)) throw new Error('EEXIST');
    s.dests.set(`${d.address}:${d.port}`, d);
  }
  async updateDest(k: IpvsServiceKey, d: IpvsDest) {
    this.calls.push(`updateDest ${d.address}:${d.port} w${d.weight}`);
    const s = this.svc(k);
    if (!s.dests.has(`${d.address}:${d.port}`)) throw new Error('ENOENT');
    s.dests.set(`${d.address}:${d.port}`, d);
  }
  async deleteDest(k: IpvsServiceKey, d: IpvsDestKey) {
    this.calls.push(`deleteDest ${d.address}:${d.port}`);
    if (!this.svc(k).dests.delete(`${d.address}:${d.port}`)) throw new Error('ENOENT');
  }
  async getTimeouts() {
    return { ...this.timeouts };
  }
  async setTimeouts(t: IpvsTimeouts) {
    this.calls.push(`setTimeouts ${t.tcp}/${t.tcpFin}/${t.udp}`);
    this.timeouts = { ...t };
  }
}

/** The mesh's fake namespace for iptables, recording each iptables-restore input. */
function fakeIptables() {
  const fake = fakeIptablesRunner();
  return { run: fake.run, restored: fake.inputs, fake };
}

const table: LbTable = {
  services: [
    { id: 'web', frontend: { kind: 'vip', address: '10.0.0.10', protocol: 'tcp', port: 80 }, scheduler: 'rr', backends: [{ address: '10.0.1.2', port: 0, weight: 1 }, { address: '10.0.1.3', port: 0, weight: 1 }] },
    { id: 'pub', frontend: { kind: 'fwmark', mark: 300, protocol: 'tcp', port: 8080 }, scheduler: 'wrr', persistenceSeconds: 60, backends: [{ address: '10.255.0.5', port: 0, weight: 3 }], sourceNat: '10.255.0.2' },
  ],
};

describe('IpvsBackend (fake kernel)', () => {
  it('applies, reads back the same table, then changes only the difference', async () => {
    const kernel = new FakeIpvs();
    kernel.timeouts = { tcp: 7200, tcpFin: 120, udp: 300 };
    const ipt = fakeIptables();
    const events: Record<string, unknown>[] = [];
    const be = new IpvsBackend(kernel, { run: ipt.run, log: (e) => events.push(e) });
    const first = await be.apply(table);
    expect(first.changes).toBe(1 + 2 + 3 + 1 + 1); // timeouts, 2 services, 3 dests, mark chain, SNAT chain
    expect(kernel.timeouts).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(events[0]).toMatchObject({ event: 'ipvs_timeouts', tcpIdleSeconds: 900, previous: { tcp: 7200 } });
    expect(ipt.restored[0]).toContain('--dport 8080 -m comment --comment "meshnet:pub" -j MARK --set-xmark 0x12c/0xffffffff');
    // pub's sourceNat: the packets IPVS sends on still carry the mark in POSTROUTING.
    expect(ipt.restored[1]).toBe(
      '*nat\n:MESHNET-IPVS-SNAT - [0:0]\n-A MESHNET-IPVS-SNAT -m mark --mark 0x12c -m comment --comment "meshnet:pub" -j SNAT --to-source 10.255.0.2\n' +
        '-I POSTROUTING 1 -m comment --comment meshnet-ipvs-snat -j MESHNET-IPVS-SNAT\nCOMMIT\n',
    );

    const back = await be.read();
    expect(back).toEqual({
      services: [
        { ...table.services[0], backends: [{ address: '10.0.1.2', port: 80, weight: 1 }, { address: '10.0.1.3', port: 80, weight: 1 }] },
        { id: 'pub', frontend: { kind: 'fwmark', mark: 300, protocol: 'tcp', port: 8080 }, scheduler: 'wrr', persistenceSeconds: 60, sourceNat: '10.255.0.2', backends: [{ address: '10.255.0.5', port: 0, weight: 3 }] },
      ],
    });

    kernel.calls = [];
    const again = await be.apply(table);
    expect(again.changes).toBe(0);
    expect(kernel.calls).toEqual([]);
    expect(ipt.restored).toHaveLength(2);

    const drained: LbTable = { services: [{ ...table.services[0]!, backends: [{ address: '10.0.1.2', port: 0, weight: 0 }, { address: '10.0.1.3', port: 0, weight: 1 }] }] };
    await be.apply(drained);
    expect(kernel.calls).toEqual(['updateDest 10.0.1.2:80 w0', 'deleteService fwm/inet/300']);
    // No fwmark frontend left: the chain and its hooks go.
    expect(ipt.restored[2]).toBe(
      '*mangle\n:MESHNET-IPVS-MARK - [0:0]\n-D PREROUTING -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK\n' +
        '-D OUTPUT -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK\n-X MESHNET-IPVS-MARK\nCOMMIT\n',
    );
    // ... and the SNAT rule with its service, before the service itself goes.
    expect(ipt.restored[3]).toContain('-X MESHNET-IPVS-SNAT');

    await be.apply(table);
    await be.destroy();
    expect(kernel.services.size).toBe(0);
    expect(ipt.restored[6]).toContain('-X MESHNET-IPVS-MARK');
    expect(ipt.restored[7]).toContain('-X MESHNET-IPVS-SNAT');
    expect(ipt.fake.state.get('mangle')!.has('MESHNET-IPVS-MARK')).toBe(false);
    expect(ipt.fake.state.get('nat')!.has('MESHNET-IPVS-SNAT')).toBe(false);
  });

  it('runs concurrent applies one after the other, so the last table wins without EEXIST', async () => {
    const kernel = new FakeIpvs();
    const be = new IpvsBackend(kernel, { run: fakeIptables().run });
    const vipOnly: LbTable = { services: [table.services[0]!] };
    const moved: LbTable = { services: [{ ...table.services[0]!, backends: [{ address: '10.0.1.9', port: 0, weight: 1 }] }] };
    await Promise.all([be.apply(vipOnly), be.apply(vipOnly), be.apply(moved)]);
    expect((await be.read()).services[0]!.backends).toEqual([{ address: '10.0.1.9', port: 80, weight: 1 }]);
    expect(kernel.calls.filter((c) => c.startsWith('addService'))).toHaveLength(1);
  });

  it('rejects an invalid table before touching the kernel', async () => {
    const kernel = new FakeIpvs();
    const be = new IpvsBackend(kernel, { run: fakeIptables().run });
    await expect(be.apply({ services: [{ ...table.services[0]!, id: 'NO' }] })).rejects.toThrow(/service id "NO"/);
    expect(kernel.calls).toEqual([]);
  });
});

describe('IpvsBackend with v6 VIPs (fake kernel, one fake namespace per iptables family)', () => {
  const v6: LbTable = {
    services: [
      { id: 'web-tcp6', frontend: { kind: 'vip', address: 'fd00:9::2', protocol: 'tcp', port: 0 }, scheduler: 'wrr', persistenceSeconds: 60, backends: [{ address: 'fd00:9::11', port: 0, weight: 2 }, { address: 'fd00:9::12', port: 0, weight: 1 }] },
    ],
  };
  const setup = () => {
    const kernel = new FakeIpvs();
    const ipt4 = fakeIptables();
    const ipt6 = fakeIptables();
    let made = 0;
    const be = new IpvsBackend(kernel, { run: ipt4.run, iptables6: () => (made++, new IptablesWriter({ netns: null, run: ipt6.run, family: 'ipv6' })) });
    return { kernel, ipt4, ipt6, be, made: () => made };
  };

  it('a v4-only table never makes the ip6tables writer nor forks an ip6tables tool', async () => {
    const { be, ipt6, made } = setup();
    await be.apply(table);
    await be.reconcile(table);
    await be.read();
    await be.destroy();
    expect(made()).toBe(0);
    expect(ipt6.fake.forks).toEqual([]);
  });

  it('serves the v6 VIP as an AF_INET6 fwmark service, its mark in ip6tables and none in iptables; reads it back; changes nothing twice', async () => {
    const { be, kernel, ipt4, ipt6 } = setup();
    const both: LbTable = { services: [...table.services, ...v6.services] };
    await be.apply(both);
    const svc = [...kernel.services.values()].find((s) => s.service.key.family === 'inet6')!;
    expect(svc.service).toMatchObject({ key: { kind: 'fwmark', family: 'inet6' }, scheduler: 'wrr', flags: 1, timeout: 60, netmaskPrefix: 128 });
    expect([...svc.dests.values()].map((d) => `${d.family} ${d.address} ${d.port} w${d.weight}`)).toEqual(['inet6 fd00:9::11 0 w2', 'inet6 fd00:9::12 0 w1']);
    const mark = (svc.service.key as { fwmark: number }).fwmark;
    expect(ipt6.fake.forks.map((a) => a[0])).toEqual(['ip6tables-save', 'ip6tables-restore']);
    expect(ipt6.restored[0]).toContain(`-A MESHNET-IPVS-MARK -d fd00:9::2/128 -p tcp -m comment --comment "meshnet:web-tcp6" -j MARK --set-xmark 0x${mark.toString(16)}/0xffffffff`);
    expect(ipt4.restored.join('')).not.toContain('fd00');

    expect((await be.read()).services.find((s) => s.id === 'web-tcp6')).toEqual({
      ...v6.services[0],
      backends: [{ address: 'fd00:9::11', port: 0, weight: 2 }, { address: 'fd00:9::12', port: 0, weight: 1 }],
    });
    kernel.calls = [];
    const forks6 = ipt6.fake.forks.length;
    expect((await be.apply(both)).changes).toBe(0);
    expect(kernel.calls).toEqual([]);
    expect(ipt6.fake.forks).toHaveLength(forks6);
  });

  it('drains and removes v6 backends as v4 ones; the last v6 VIP takes its ip6tables chain with it', async () => {
    const { be, kernel, ipt6 } = setup();
    await be.apply(v6);
    kernel.calls = [];
    const drained: LbTable = { services: [{ ...v6.services[0]!, backends: [{ address: 'fd00:9::11', port: 0, weight: 0 }, { address: 'fd00:9::12', port: 0, weight: 1 }] }] };
    await be.apply(drained);
    expect(kernel.calls).toEqual(['updateDest fd00:9::11:0 w0']);
    await be.apply({ services: [{ ...v6.services[0]!, backends: [{ address: 'fd00:9::12', port: 0, weight: 1 }] }] });
    expect(kernel.calls.at(-1)).toBe('deleteDest fd00:9::11:0');
    await be.apply({ services: [] });
    expect(kernel.services.size).toBe(0);
    expect(ipt6.fake.state.get('mangle')?.has('MESHNET-IPVS-MARK') ?? false).toBe(false);
  });

  it('an agent that finds v6 services an earlier one left (and no v6 VIP now) removes them and their ip6tables marks', async () => {
    const earlier = setup();
    await earlier.be.apply(v6);
    const kernel = earlier.kernel;
    let made = 0;
    const be = new IpvsBackend(kernel, { run: fakeIptables().run, iptables6: () => (made++, new IptablesWriter({ netns: null, run: earlier.ipt6.run, family: 'ipv6' })) });
    await be.reconcile(table);
    expect(made).toBe(1);
    expect([...kernel.services.values()].some((s) => s.service.key.family === 'inet6')).toBe(false);
    expect(earlier.ipt6.fake.state.get('mangle')?.has('MESHNET-IPVS-MARK') ?? false).toBe(false);
  });
});

describe('IPVS tuning', () => {
  it('gives the sysctls Swarm needed and explicit timeouts', () => {
    expect(ipvsSysctls()).toEqual({
      'net.ipv4.vs.conn_reuse_mode': '0',
      'net.ipv4.vs.expire_nodest_conn': '1',
      'net.ipv4.vs.expire_quiescent_template': '1',
      'net.ipv4.vs.conntrack': '1',
    });
    expect(ipvsTimeouts()).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(ipvsTimeouts({ tcp: 86400 })).toEqual({ tcp: 86400, tcpFin: 120, udp: 300 });
    expect(() => ipvsTimeouts({ udp: 0 })).toThrow(/udp timeout 0/);
    expect(ipvsSysctlTargets(['/run/n/ingress_sbox', '/run/n/t-1'])).toEqual(
      ['/run/n/ingress_sbox', '/run/n/t-1'].flatMap((netns) => Object.entries(ipvsSysctls()).map(([key, value]) => ({ netns, key, value }))),
    );
    expect(ipvsSysctlTargets([])).toEqual([]);
  });
});

describe('IpvsBackend SNAT (services with sourceNat: the ingress sandbox)', () => {
  const everyPort: LbTable = { services: [{ id: 'api-tcp0', frontend: { kind: 'vip', address: '10.0.0.20', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [{ address: '10.0.1.2', port: 0, weight: 1 }] }] };

  it('a namespace with every-port VIPs only never reads or writes its nat table for SNAT', async () => {
    const ipt = fakeIptables();
    const be = new IpvsBackend(new FakeIpvs(), { run: ipt.run });
    await be.apply(everyPort);
    await be.reconcile(everyPort);
    await be.read();
    await be.destroy();
    expect(ipt.fake.forks.filter((argv) => argv.includes('nat'))).toEqual([]);
    expect(ipt.restored.every((script) => !script.includes('*nat'))).toBe(true);
    expect(ipt.restored.some((script) => script.includes('*mangle'))).toBe(true); // the marks did go through this writer
  });

  it('a restarted agent removes the SNAT rule an earlier one left for a service that no longer has sourceNat', async () => {
    const kernel = new FakeIpvs();
    const ipt = fakeIptables();
    await new IpvsBackend(kernel, { run: ipt.run }).apply(table);
    expect(ipt.fake.state.get('nat')!.get('MESHNET-IPVS-SNAT')).toHaveLength(1);
    const { sourceNat: _gone, ...plain } = table.services[1]!;
    await new IpvsBackend(kernel, { run: ipt.run }).apply({ services: [table.services[0]!, plain] });
    expect(ipt.fake.state.get('nat')!.has('MESHNET-IPVS-SNAT')).toBe(false);
    expect(ipt.fake.state.get('nat')!.get('POSTROUTING') ?? []).toEqual([]);
  });

  it('a port-specific VIP with sourceNat is matched by its original destination (conntrack), and v6 SNAT is refused', async () => {
    const ipt = fakeIptables();
    const be = new IpvsBackend(new FakeIpvs(), { run: ipt.run });
    const vip: LbTable = { services: [{ ...table.services[0]!, sourceNat: '10.0.0.9' }] };
    await be.apply(vip);
    expect(ipt.fake.state.get('nat')!.get('MESHNET-IPVS-SNAT')).toEqual(['-p tcp -m conntrack --ctorigdst 10.0.0.10 --ctorigdstport 80 -m comment --comment "meshnet:web" -j SNAT --to-source 10.0.0.9']);
    expect((await be.read()).services[0]!.sourceNat).toBe('10.0.0.9');
    const v6: LbTable = { services: [{ id: 'pub6', frontend: { kind: 'fwmark', mark: 301, protocol: 'tcp', port: 8080, address: 'fd00::2' }, scheduler: 'rr', sourceNat: 'fd00::3', backends: [] }] };
    await expect(be.apply(v6)).rejects.toThrow(/sourceNat fd00::3 must be an IPv4 address on a v4 service/);
  });
});
