import { describe, expect, it } from 'vitest';
import type { LbTable } from '../lb-table.js';
import type { IpvsDest, IpvsDestKey, IpvsDestStatus, IpvsService, IpvsServiceKey, IpvsTimeouts } from './codec.js';
import { fakeIptablesRunner } from '../../mesh/fake-iptables.test-helper.js';
import { IpvsBackend, type IpvsKernel } from './ipvs-backend.js';
import { serviceKeyId } from './ipvs-plan.js';
import { ipvsSysctls, ipvsTimeouts, sourceNatNeeds } from './ipvs-tuning.js';

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
    expect(first.changes).toBe(1 + 2 + 3 + 1); // timeouts, 2 services, 3 dests, mark chain
    expect(kernel.timeouts).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(events[0]).toMatchObject({ event: 'ipvs_timeouts', tcpIdleSeconds: 900, previous: { tcp: 7200 } });
    expect(ipt.restored[0]).toContain('--dport 8080 -m comment --comment "meshnet:pub" -j MARK --set-xmark 0x12c/0xffffffff');

    const back = await be.read();
    expect(back).toEqual({
      services: [
        { ...table.services[0], backends: [{ address: '10.0.1.2', port: 80, weight: 1 }, { address: '10.0.1.3', port: 80, weight: 1 }] },
        { id: 'pub', frontend: { kind: 'fwmark', mark: 300, protocol: 'tcp', port: 8080 }, scheduler: 'wrr', persistenceSeconds: 60, backends: [{ address: '10.255.0.5', port: 0, weight: 3 }] },
      ],
    });

    kernel.calls = [];
    const again = await be.apply(table);
    expect(again.changes).toBe(0);
    expect(kernel.calls).toEqual([]);
    expect(ipt.restored).toHaveLength(1);

    const drained: LbTable = { services: [{ ...table.services[0]!, backends: [{ address: '10.0.1.2', port: 0, weight: 0 }, { address: '10.0.1.3', port: 0, weight: 1 }] }] };
    await be.apply(drained);
    expect(kernel.calls).toEqual(['updateDest 10.0.1.2:80 w0', 'deleteService fwm/inet/300']);
    // No fwmark frontend left: the chain and its hooks go.
    expect(ipt.restored[1]).toBe(
      '*mangle\n:MESHNET-IPVS-MARK - [0:0]\n-D PREROUTING -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK\n' +
        '-D OUTPUT -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK\n-X MESHNET-IPVS-MARK\nCOMMIT\n',
    );

    await be.apply(table);
    await be.destroy();
    expect(kernel.services.size).toBe(0);
    expect(ipt.restored[3]).toContain('-X MESHNET-IPVS-MARK');
    expect(ipt.fake.state.get('mangle')!.has('MESHNET-IPVS-MARK')).toBe(false);
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
    expect(sourceNatNeeds(table)).toEqual([{ serviceId: 'pub', toSource: '10.255.0.2', backends: ['10.255.0.5'] }]);
  });
});
