/**
 * Proves what this machine's kernel cannot run: the IPVS backend against a real IPVS, and the
 * encrypted overlay's ESP data path (this kernel has XFRM but no esp4 and no gcm). One boot of a
 * Debian 6.1 kernel under qemu (TCG) with an initramfs built by build-vm.sh runs vm-main.js
 * (ipvs-vm-scenario.ts, then esp-vm-scenario.ts) inside; the test checks what ipvsadm,
 * /proc/net/ip_vs, XFRM dumps, the wire's counters and real traffic showed. Needs root,
 * `npm run build`, and the Debian packages qemu-system-x86, busybox-static, kmod, ipvsadm, cpio,
 * iptables, iproute2, iperf3 (installed here when missing).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ESP_MARK, spiFor } from '../../src/overlay/encryption-plan.js';
import { everyPortMarks } from '../../src/vip/ipvs/every-port-marks.js';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const NEEDED = { 'qemu-system-x86_64': 'qemu-system-x86', busybox: 'busybox-static', depmod: 'kmod', ipvsadm: 'ipvsadm', cpio: 'cpio', 'xtables-legacy-multi': 'iptables', ip: 'iproute2', iperf3: 'iperf3' };
/** Generous: under TCG on a loaded 2-core host the boot alone has taken 20-40 s. */
const VM_TIMEOUT_S = 240;

function has(cmd: string): boolean {
  return ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, cmd)));
}

/** Installs what is missing; returns why qemu cannot run, or undefined when it can. */
function prepareHost(): string | undefined {
  const missing = [...new Set(Object.entries(NEEDED).filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg))];
  if (missing.length > 0) {
    try {
      execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'ignore', timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } catch {
      // Reported below by what is still missing.
    }
  }
  if (!has('qemu-system-x86_64')) return `qemu-system-x86_64 is not installed and \`apt-get install qemu-system-x86\` failed`;
  return undefined;
}

const skipReason = process.getuid?.() === 0 ? prepareHost() : 'needs root (apt-get, depmod into /var/cache/meshnet)';
if (skipReason) console.warn(`kernel-vm: SKIPPED, ${skipReason}`);

/** Text between "=== BEGIN name ===" and "=== END name ===" on the serial console. */
function section(serial: string, name: string): string {
  const begin = serial.indexOf(`=== BEGIN ${name} ===\n`);
  const end = serial.indexOf(`=== END ${name} ===`, begin);
  if (begin < 0 || end < 0) throw new Error(`the VM printed no ${name} section; serial output ends with:\n${serial.slice(-3000)}`);
  return serial.slice(begin + `=== BEGIN ${name} ===\n`.length, end);
}

interface ShownService {
  service: string;
  scheduler: string;
  flags: string;
  dests: string[];
}

/** ipvsadm -Ln as sorted plain data: "TCP 10.0.0.1:80" (or "FWM 7 IPv6") / "rr" / flags / ["10.0.1.2:80 Masq 1"]. */
function parseIpvsadm(text: string): ShownService[] {
  const out: ShownService[] = [];
  for (const line of text.split('\n')) {
    const svc = /^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+(?:(IPv6)\s+)?(\S+)\s*(.*)$/.exec(line);
    if (svc) {
      out.push({ service: `${svc[1]} ${svc[2]}${svc[3] ? ' IPv6' : ''}`, scheduler: svc[4]!, flags: svc[5]!.trim(), dests: [] });
      continue;
    }
    const dest = /^\s+->\s+([\d[]\S*)\s+(\w+)\s+(\d+)/.exec(line);
    if (dest) out.at(-1)!.dests.push(`${dest[1]} ${dest[2]} ${dest[3]}`);
  }
  for (const s of out) s.dests.sort();
  return out.sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
}

interface DecodedService {
  service: { key: { kind: string; family: string; protocol?: string; address?: string; port?: number; fwmark?: number }; scheduler: string; flags: number; timeout: number; netmaskPrefix: number };
  dests: { family: string; address: string; port: number; forward: string; weight: number }[];
}

/** ipvsadm's text for an address and port: IPv6 in brackets. */
function hostPort(family: string, address: string, port: number): string {
  return family === 'inet6' ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Our GET_SERVICE / GET_DEST decode in the same shape as parseIpvsadm. */
function fromDecoded(services: DecodedService[]): ShownService[] {
  return services
    .map(({ service: s, dests }) => {
      const k = s.key;
      const v4mask = ` mask ${[24, 16, 8, 0].map((sh) => ((0xffffffff << (32 - s.netmaskPrefix)) >>> sh) & 255).join('.')}`;
      const mask = k.family === 'inet6' ? (s.netmaskPrefix === 128 ? '' : ` mask ${s.netmaskPrefix}`) : s.netmaskPrefix === 32 ? '' : v4mask;
      return {
        service: k.kind === 'fwmark' ? `FWM ${k.fwmark}${k.family === 'inet6' ? ' IPv6' : ''}` : `${k.protocol!.toUpperCase()} ${hostPort(k.family, k.address!, k.port!)}`,
        scheduler: s.scheduler,
        flags: s.flags & 1 ? `persistent ${s.timeout}${mask}` : '',
        dests: dests.map((d) => `${hostPort(d.family, d.address, d.port)} ${d.forward === 'masq' ? 'Masq' : d.forward} ${d.weight}`).sort(),
      };
    })
    .sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
}

function count(xs: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const x of xs) c[x] = (c[x] ?? 0) + 1;
  return c;
}

let serial = '';

describe.skipIf(skipReason !== undefined)('a qemu VM with the Debian 6.1 kernel', () => {
  let work = '';
  const timing = { buildMs: 0, bootMs: 0 };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'meshnet-kernel-vm-'));
    let t = performance.now();
    try {
      execFileSync('bash', [join(repo, 'test/vm/build-vm.sh'), repo, work], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`building the VM failed: ${err.stderr?.toString() ?? err.message}`);
    }
    timing.buildMs = performance.now() - t;
    t = performance.now();
    serial = await new Promise<string>((resolveRun, reject) => {
      const qemu = spawn(
        'timeout',
        [
          String(VM_TIMEOUT_S),
          'qemu-system-x86_64', '-accel', 'tcg', '-cpu', 'max', '-m', '1024', '-smp', '2',
          '-nographic', '-no-reboot', '-nic', 'none',
          '-kernel', join(work, 'vmlinuz'), '-initrd', join(work, 'initramfs.cpio'),
          '-append', 'console=ttyS0 panic=-1 quiet',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      qemu.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
      qemu.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
      qemu.on('error', reject);
      qemu.on('close', () => resolveRun(out.replaceAll('\r', '')));
    });
    timing.bootMs = performance.now() - t;
    const stages = [...serial.matchAll(/=== STAGE (\S+) ([\d.]+)/g)].map((m) => `${m[1]}@${m[2]}s`).join(' ');
    console.log(`kernel-vm: build ${Math.round(timing.buildMs)} ms, qemu ${Math.round(timing.bootMs)} ms; guest ${stages}`);
  }, 900_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('boots, loads the IPVS and ESP modules and runs both scenarios', () => {
    expect(serial).not.toContain('=== FAIL');
    expect(serial).not.toContain('=== BEGIN SCENARIO_ERROR ===');
    expect(serial).not.toContain('=== BEGIN ESP_SCENARIO_ERROR ===');
    expect(serial).toContain('=== RESULT ok ===');
  });

  describe('the IPVS backend', () => {

    it('programs services and destinations through our codec and client: ipvsadm -Ln shows exactly that', () => {
      expect(parseIpvsadm(section(serial, 'IPVSADM_LN'))).toEqual([
        { service: 'FWM 42', scheduler: 'rr', flags: 'persistent 300 mask 255.255.255.0', dests: ['10.20.0.4:0 Masq 1'] },
        { service: 'TCP 10.10.0.1:80', scheduler: 'rr', flags: '', dests: ['10.20.0.2:8080 Masq 1', '10.20.0.3:8080 Masq 1'] },
        // wrr with weights; the second destination set to weight 0 (draining) by SET_DEST.
        { service: 'TCP 10.10.0.2:443', scheduler: 'wrr', flags: '', dests: ['10.20.0.2:443 Masq 5', '10.20.0.3:443 Masq 0'] },
        { service: 'TCP 10.10.0.4:80', scheduler: 'lc', flags: '', dests: [] },
        // Created as mh, changed to sh by SET_SERVICE; the UDP sh service was deleted.
        { service: 'TCP 10.10.0.5:80', scheduler: 'sh', flags: '', dests: [] },
        { service: 'TCP [fd00::1]:80', scheduler: 'rr', flags: 'persistent 60', dests: ['[fd00::2]:8080 Masq 1'] },
      ]);
    });

    it('sets the timeouts with SET_CONFIG and reads them back with GET_CONFIG', () => {
      expect(section(serial, 'IPVSADM_TIMEOUT').trim()).toBe('Timeout (tcp tcpfin udp): 1800 60 120');
      expect(JSON.parse(section(serial, 'OURS_PROGRAM')).timeouts).toEqual({ tcp: 1800, tcpFin: 60, udp: 120 });
    });

    it('agrees with /proc/net/ip_vs (addresses and ports in hex)', () => {
      const proc = section(serial, 'PROC_IP_VS');
      expect(proc).toMatch(/^TCP {2}0A0A0001:0050 rr/m);
      expect(proc).toMatch(/^ {2}-> 0A140002:1F90\s+Masq\s+1/m);
      expect(proc).toMatch(/^TCP {2}0A0A0002:01BB wrr/m);
      expect(proc).toMatch(/^ {2}-> 0A140003:01BB\s+Masq\s+0/m);
      expect(proc).toMatch(/^FWM {2}0000002A rr persistent \d+ FFFFFF00/m);
      expect(proc).not.toMatch(/0A0A0003/);
    });

    it('reads the same services and destinations back through our GET_SERVICE / GET_DEST decode', () => {
      const ours = JSON.parse(section(serial, 'OURS_PROGRAM')) as { services: DecodedService[]; errors: string[]; probe: boolean };
      expect(fromDecoded(ours.services)).toEqual(parseIpvsadm(section(serial, 'IPVSADM_LN')));
      // Kernel refusals come back as typed errors carrying the errno.
      expect(ours.errors).toEqual(['duplicate service: EEXIST', 'deleted service again: ESRCH']);
      expect(ours.probe).toBe(true);
    });

    describe('LbBackend.apply in the lb namespace, entered through the enterNamespace hook', () => {
      const traffic = () => JSON.parse(section(serial, 'TRAFFIC'));

      it('sets the sysctls Swarm needs in each IPVS namespace of the plan (the sandbox and a task), read back', () => {
        const want = {
          'net.ipv4.vs.conn_reuse_mode': '0',
          'net.ipv4.vs.expire_nodest_conn': '1',
          'net.ipv4.vs.expire_quiescent_template': '1',
          'net.ipv4.vs.conntrack': '1',
        };
        expect(traffic().sysctls).toEqual(want);
        expect(traffic().taskSysctls).toEqual(want);
      });

      it('creates the VIP and fwmark services with their MARK rule, and a second apply changes nothing', () => {
        const t = traffic();
        expect(t.first.changes).toBe(2 + 4 + 1); // 2 services, 4 destinations, 1 mark-chain transaction
        expect(t.second.changes).toBe(0);
        expect(parseIpvsadm(t.ipvsadmLb)).toEqual([
          { service: 'FWM 7', scheduler: 'wrr', flags: '', dests: ['10.2.0.2:0 Masq 1', '10.3.0.2:0 Masq 1'] },
          { service: 'TCP 10.99.0.100:80', scheduler: 'rr', flags: '', dests: ['10.2.0.2:80 Masq 1', '10.3.0.2:80 Masq 1'] },
        ]);
        expect(t.mangle).toContain('-A PREROUTING -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK');
        expect(t.mangle).toContain('-A OUTPUT -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK');
        expect(t.mangle).toContain('-A MESHNET-IPVS-MARK -d 10.99.0.101/32 -p tcp -m tcp --dport 8080 -m comment --comment "meshnet:pub-8080" -j MARK --set-xmark 0x7/0xffffffff');
        expect(t.events[0]).toMatchObject({ event: 'ipvs_timeouts', tcpIdleSeconds: 900 });
      });

      it('reads the table back (ids, frontends, schedulers, backends)', () => {
        const services = traffic().readBack.services as { id: string; backends: { address: string }[] }[];
        for (const s of services) s.backends.sort((a, b) => a.address.localeCompare(b.address));
        expect(services).toEqual([
          { id: 'web', frontend: { kind: 'vip', address: '10.99.0.100', protocol: 'tcp', port: 80 }, scheduler: 'rr', backends: [{ address: '10.2.0.2', port: 80, weight: 1 }, { address: '10.3.0.2', port: 80, weight: 1 }] },
          { id: 'pub-8080', frontend: { kind: 'fwmark', mark: 7, protocol: 'tcp', port: 8080, address: '10.99.0.101' }, scheduler: 'wrr', backends: [{ address: '10.2.0.2', port: 0, weight: 1 }, { address: '10.3.0.2', port: 0, weight: 1 }] },
        ]);
      });

      it('spreads client requests to the VIP across both backends (rr: 4 and 4 of 8)', () => {
        expect(count(traffic().vip)).toEqual({ b1: 4, b2: 4 });
      });

      it('balances the fwmark service fed by the MARK rule across both backends', () => {
        expect(count(traffic().fwmark)).toEqual({ b1: 4, b2: 4 });
      });

      it('sends nothing new to a weight-0 (draining) backend', () => {
        const t = traffic();
        expect(t.drainReport.changes).toBe(2); // one SET_DEST per service
        expect(parseIpvsadm(t.ipvsadmDrained).map((s) => s.dests)).toEqual([
          ['10.2.0.2:0 Masq 0', '10.3.0.2:0 Masq 1'],
          ['10.2.0.2:80 Masq 0', '10.3.0.2:80 Masq 1'],
        ]);
        expect(count(t.drained)).toEqual({ b2: 6 });
      });

      it('destroy removes its services and mark chain, and never touched the root namespace', () => {
        const t = traffic();
        expect(parseIpvsadm(t.afterDestroy)).toEqual([]);
        expect(t.mangleAfter).not.toContain('MESHNET-IPVS-MARK');
        // The socket opened through the hook stayed in lb: the root namespace still holds only part 1's services.
        expect(parseIpvsadm(t.rootAfter).map((s) => s.service)).toEqual(['FWM 42', 'TCP 10.10.0.1:80', 'TCP 10.10.0.2:443', 'TCP 10.10.0.4:80', 'TCP 10.10.0.5:80', 'TCP [fd00::1]:80']);
      });
    });

    describe('an every-port VIP (port 0), as Swarm balances VIPs', () => {
      const everyPort = () => JSON.parse(section(serial, 'EVERYPORT'));

      it('is an fwmark service fed by a MARK rule on the VIP with no port, and a second apply changes nothing', () => {
        const t = everyPort();
        expect(t.second.changes).toBe(0);
        const [svc] = parseIpvsadm(t.ipvsadm);
        expect(svc!.service).toMatch(/^FWM \d+$/);
        expect(svc!.dests).toEqual(['10.2.0.2:0 Masq 1', '10.3.0.2:0 Masq 1']);
        expect(t.mangle).toMatch(/-A MESHNET-IPVS-MARK -d 10\.99\.0\.102\/32 -p tcp -m comment --comment "meshnet:any-tcp0" -j MARK --set-xmark 0x[0-9a-f]+\/0xffffffff/);
      });

      it('reads back as the every-port VIP it was given', () => {
        const services = everyPort().readBack.services as { backends: { address: string }[] }[];
        for (const s of services) s.backends.sort((a, b) => a.address.localeCompare(b.address));
        expect(services).toEqual([
          { id: 'any-tcp0', frontend: { kind: 'vip', address: '10.99.0.102', protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [{ address: '10.2.0.2', port: 0, weight: 1 }, { address: '10.3.0.2', port: 0, weight: 1 }] },
        ]);
      });

      it('spreads connections on two different ports over both backends, each keeping its port', () => {
        const t = everyPort();
        expect(count(t.port80)).toEqual({ b1: 2, b2: 2 });
        expect(count(t.port8080)).toEqual({ b1: 2, b2: 2 });
      });
    });

    describe('a v6 VIP (every port, as a dual-stack network gives it): AF_INET6 fwmark services fed by ip6tables marks', () => {
      const v6 = () => JSON.parse(section(serial, 'V6VIP'));
      const VIP6 = 'fd00:99::102';
      const mark = everyPortMarks({ services: [{ id: 'x', frontend: { kind: 'vip', address: VIP6, protocol: 'tcp', port: 0 }, scheduler: 'rr', backends: [] }] })(VIP6, 'tcp');
      const dests = (...ws: [string, number][]) => ws.map(([a, w]) => `[${a}]:0 Masq ${w}`);

      it('creates both services with 16-byte destinations and the UDP one persistent per client address (/128: ipvsadm shows no mask); a second apply changes nothing', () => {
        const t = v6();
        expect(t.first.changes).toBe(2 + 4 + 1); // 2 services, 4 destinations, 1 ip6tables transaction
        expect(t.second.changes).toBe(0);
        expect(parseIpvsadm(t.ipvsadm)).toEqual([
          { service: `FWM ${mark} IPv6`, scheduler: 'rr', flags: '', dests: dests(['fd00:2::2', 1], ['fd00:3::2', 1]) },
          { service: `FWM ${mark + 1} IPv6`, scheduler: 'rr', flags: 'persistent 60', dests: dests(['fd00:2::2', 1], ['fd00:3::2', 1]) },
        ]);
      });

      it('marks in ip6tables mangle (hooked from PREROUTING and OUTPUT), nothing in iptables', () => {
        const t = v6();
        expect(t.mangle6).toContain(`-A MESHNET-IPVS-MARK -d ${VIP6}/128 -p tcp -m comment --comment "meshnet:web6-tcp0" -j MARK --set-xmark 0x${mark.toString(16)}/0xffffffff`);
        expect(t.mangle6).toContain(`-A MESHNET-IPVS-MARK -d ${VIP6}/128 -p udp -m comment --comment "meshnet:web6-udp0" -j MARK --set-xmark 0x${(mark + 1).toString(16)}/0xffffffff`);
        expect(t.mangle6).toContain('-A PREROUTING -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK');
        expect(t.mangle6).toContain('-A OUTPUT -m comment --comment meshnet-ipvs -j MESHNET-IPVS-MARK');
        expect(t.mangle4).not.toContain('MESHNET-IPVS-MARK');
      });

      it('reads back as the v6 VIPs it was given', () => {
        const services = v6().readBack.services as { backends: { address: string }[] }[];
        for (const s of services) s.backends.sort((a, b) => a.address.localeCompare(b.address));
        const backends = [{ address: 'fd00:2::2', port: 0, weight: 1 }, { address: 'fd00:3::2', port: 0, weight: 1 }];
        expect(services).toEqual([
          { id: 'web6-tcp0', frontend: { kind: 'vip', address: VIP6, protocol: 'tcp', port: 0 }, scheduler: 'rr', backends },
          { id: 'web6-udp0', frontend: { kind: 'vip', address: VIP6, protocol: 'udp', port: 0 }, scheduler: 'rr', persistenceSeconds: 60, backends },
        ]);
      });

      it('spreads connections over both v6 backends on any port, from a client namespace and from the namespace itself (OUTPUT)', () => {
        const t = v6();
        // rr alternates: 4, then 2 and 2 more, each half and half.
        expect(count(t.port80)).toEqual({ b1: 2, b2: 2 });
        expect(count(t.port8080)).toEqual({ b1: 1, b2: 1 });
        expect(count(t.local)).toEqual({ b1: 1, b2: 1 });
      });

      it('a drained (weight 0) and then removed backend gets no new connection', () => {
        const t = v6();
        expect(t.drainReport.changes).toBe(2); // one SET_DEST per service
        expect(parseIpvsadm(t.ipvsadmDrained).map((s) => s.dests)).toEqual([dests(['fd00:2::2', 0], ['fd00:3::2', 1]), dests(['fd00:2::2', 0], ['fd00:3::2', 1])]);
        expect(count(t.drained)).toEqual({ b2: 2 });
        expect(t.removeReport.changes).toBe(2); // one DEL_DEST per service
        expect(parseIpvsadm(t.ipvsadmRemoved).map((s) => s.dests)).toEqual([dests(['fd00:3::2', 1]), dests(['fd00:3::2', 1])]);
        expect(count(t.removed)).toEqual({ b2: 2 });
      });

      it('destroy removes the v6 services and the ip6tables chain', () => {
        const t = v6();
        expect(parseIpvsadm(t.afterDestroy)).toEqual([]);
        expect(t.mangle6After).not.toContain('MESHNET-IPVS-MARK');
        console.log(`kernel-vm v6 VIP part, guest ms by step (TCG): ${JSON.stringify(t.laps)}`);
      });
    });
  });

  describe('a published port balanced to a backend with no route back to the client (the ingress sandbox SNAT)', () => {
    const snat = () => JSON.parse(section(serial, 'SNAT'));
    const RULE = '-A MESHNET-IPVS-SNAT -m mark --mark 0x2040 -m comment --comment "meshnet:ingress-tcp-8000" -j SNAT --to-source 10.4.0.1';

    it('fails without the SNAT rule: the backend cannot answer the client', () => {
      const t = snat();
      expect(t.plain.changes).toBe(1 + 1 + 1); // service, destination, mark chain; no nat write
      expect(t.natPlain).not.toContain('MESHNET-IPVS-SNAT');
      expect(t.withoutSnat).toEqual(['FAILED']);
    });

    it('is answered once the backend writes the SNAT rule (nat POSTROUTING, matched by the mark); a second apply changes nothing', () => {
      const t = snat();
      expect(t.snat.changes).toBe(1); // one nat transaction
      expect(t.again.changes).toBe(0);
      expect(t.nat).toContain('-A POSTROUTING -m comment --comment meshnet-ipvs-snat -j MESHNET-IPVS-SNAT');
      expect(t.nat).toContain(RULE);
      expect(t.readBack.services[0].sourceNat).toBe('10.4.0.1');
      expect(t.withSnat).toEqual(['b3', 'b3']);
    });

    it("explain's IPVS reader reads the service, its mark and SNAT, and IPVS's connection counts", () => {
      const t = snat();
      expect(t.errors).toEqual([]);
      expect(t.explainView).toMatchObject({ backend: 'ipvs', skeletonComplete: true });
      expect(t.explainView.table.services).toEqual([
        { id: 'ingress-tcp-8000', frontend: { kind: 'fwmark', mark: 0x2040, protocol: 'tcp', port: 8000, address: '10.99.0.101' }, scheduler: 'rr', sourceNat: '10.4.0.1', backends: [{ address: '10.4.0.2', port: 0, weight: 1 }] },
      ]);
      const [c] = t.explainView.connections as { active: number; inactive: number }[];
      expect(c!.active + c!.inactive).toBeGreaterThanOrEqual(2);
    });

    it('destroy removes the SNAT chain with the service', () => {
      const t = snat();
      expect(t.natAfter).not.toContain('MESHNET-IPVS-SNAT');
      console.log(`kernel-vm published-port SNAT part, guest ms by step (TCG): ${JSON.stringify(t.laps)}`);
    });
  });

  describe('the encrypted overlay: ESP between two hosts (meshnet overlay, plan, XFRM and firewall code)', () => {
    const esp = (name: string) => JSON.parse(section(serial, name));
    const [H1, H2] = ['192.168.61.2', '192.168.62.2'];
    const TAG = (n: number) => 0x1000 + n;
    const sorted = (ops: string[]) => [...ops].sort();

    it('without a keyring the encrypted VNI carries nothing (the guard drops it) while the plain one works', () => {
      const t = esp('ESP_NO_RING');
      expect(t.apply.map((a: { ops: string[] }) => a.ops)).toEqual([[], []]);
      expect(t.apply.map((a: { firewallChanged: boolean }) => a.firewallChanged)).toEqual([true, true]);
      expect(t.ping).toEqual({ enc: 0, plain: 1 });
      expect(t.wire.clear_enc).toBe(0);
      expect(t.wire.esp).toBe(0);
      expect(t.wire.clear_plain).toBeGreaterThan(0);
      // The encrypted overlay's MTU leaves room for ESP (encryption-mtu.ts); the plain one has VXLAN's 50 bytes only.
      expect(t.mtu).toEqual({ enc: 1413, plain: 1450 });
    });

    it('installs one SA per direction (rfc4106 AES-GCM, 128-bit ICV) and a marked outbound policy; a second apply and a resync change nothing', () => {
      const t = esp('ESP_TRAFFIC');
      for (const first of t.first) expect(sorted(first.ops)).toEqual(['putPolicy', 'putState', 'putState']);
      expect(t.again).toEqual([
        { ops: [], firewallChanged: false },
        { ops: [], firewallChanged: false },
      ]);
      expect(t.resyncChanged).toBe(false);
      expect(t.h1.states).toEqual(
        expect.arrayContaining([
          { src: H1, dst: H2, spi: spiFor(TAG(1), H1, H2), aead: 'rfc4106(gcm(aes))', icvBits: 128, keyBytes: 20 },
          { src: H2, dst: H1, spi: spiFor(TAG(1), H2, H1), aead: 'rfc4106(gcm(aes))', icvBits: 128, keyBytes: 20 },
        ]),
      );
      expect(t.h1.states).toHaveLength(2);
      expect(t.h1.policies).toEqual([{ src: H1, dst: H2, dport: 4789, mark: ESP_MARK, tmplSpi: spiFor(TAG(1), H1, H2) }]);
      expect(t.h2.policies).toEqual([{ src: H2, dst: H1, dport: 4789, mark: ESP_MARK, tmplSpi: spiFor(TAG(1), H2, H1) }]);
      expect(t.rules).toContain('-A MESHNET-ESP-MARK -m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x8=0x1068" -j MARK --set-xmark 0xd0c4e3/0xffffffff');
      expect(t.rules).toContain('-A MESHNET-ESP-IN -m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x8=0x1068" -m policy --dir in --pol none -j DROP');
    });

    it('carries ping and TCP over both overlays; the underlay shows ESP and no cleartext VXLAN of the encrypted VNI', () => {
      const t = esp('ESP_TRAFFIC');
      expect(t.traffic).toEqual({ pingEnc: 2, pingPlain: 2, getEnc: 't2', getPlain: 't2' });
      expect(t.wire.esp).toBeGreaterThan(0);
      expect(t.wire.clear_enc).toBe(0);
      expect(t.wire.clear_plain).toBeGreaterThan(0);
    });

    it('sends full-size frames of the encrypted network as unfragmented ESP, and measures iperf3 encrypted vs plain (TCG: only indicative)', () => {
      const t = esp('ESP_THROUGHPUT');
      expect(typeof t.encBps, String(t.encBps)).toBe('number');
      expect(typeof t.plainBps, String(t.plainBps)).toBe('number');
      expect(t.encWire.esp).toBeGreaterThan(1000);
      expect(t.encWire.esp_fragment).toBe(0);
      expect(t.encWire.clear_enc).toBe(0);
      const mbit = (b: number) => Math.round(b / 1e5) / 10;
      const ratio = Math.round((t.encBps / t.plainBps) * 1000) / 1000;
      console.log(`kernel-vm esp throughput (TCG emulates the CPU and its AES-NI: only indicative): encrypted ${mbit(t.encBps)} Mbit/s, plain ${mbit(t.plainBps)} Mbit/s, ratio ${ratio}`);
      console.log(JSON.stringify({ bench: 'esp-vm-throughput', tcg: true, encryptedBps: Math.round(t.encBps), plainBps: Math.round(t.plainBps), ratio }));
    });

    it('rotates the key three times under a loop of fresh TCP connections and loses none of them', () => {
      const t = esp('ESP_ROTATION');
      expect(t.connections.length).toBeGreaterThanOrEqual(2 + 3 * 4);
      expect(t.connections.filter((c: string) => c !== 't2')).toEqual([]);
    });

    it('each rotation installs the receiving states first, then switches the outbound SPI, and the key that falls off the ring is removed', () => {
      const t = esp('ESP_ROTATION');
      const steps = t.steps.map((s: { step: string; h1: string[]; h2: string[] }) => ({ step: s.step, h1: sorted(s.h1), h2: sorted(s.h2) }));
      const both = (ops: string[]) => ({ h1: ops, h2: ops });
      expect(steps).toEqual([
        { step: 'install 2', ...both(['putState', 'putState']) },
        { step: 'switch 2', ...both(['putPolicy']) },
        { step: 'install 3', ...both(['putState', 'putState']) },
        { step: 'switch 3', ...both(['putPolicy']) },
        { step: 'install 4', ...both(['deleteState', 'deleteState', 'putState', 'putState']) },
        { step: 'switch 4', ...both(['putPolicy']) },
      ]);
      expect(t.ring).toEqual([TAG(4), TAG(3), TAG(2)]);
      const spis = (t.h1.states as { spi: number }[]).map((s) => s.spi).sort();
      expect(spis).toEqual([2, 3, 4].flatMap((n) => [spiFor(TAG(n), H1, H2), spiFor(TAG(n), H2, H1)]).sort());
      expect(t.h1.policies.map((p: { tmplSpi: number }) => p.tmplSpi)).toEqual([spiFor(TAG(4), H1, H2)]);
      // On the wire after the last switch: h1 sends with the newest key's SPI, never with the removed one.
      expect(t.wireAfterLastSwitch[`spi_${TAG(4).toString(16)}_h1h2`]).toBeGreaterThan(0);
      expect(t.wireAfterLastSwitch[`spi_${TAG(1).toString(16)}_h1h2`]).toBe(0);
    });

    it('a peer that leaves takes its states and policies with it, and the encrypted VNI still fails closed', () => {
      const t = esp('ESP_REMOVAL');
      expect(sorted(t.removal.ops)).toEqual(['deletePolicy', ...Array(6).fill('deleteState')]);
      expect(t.h1).toEqual({ states: [], policies: [] });
      expect(t.ipXfrmH1).not.toContain(H2);
      expect(t.ping).toEqual({ pingEnc: 0, pingPlain: 1 });
      expect(t.wire.clear_enc).toBe(0);
    });

    it('a host whose last encrypted overlay went keeps no XFRM object and no ESP rule of meshnet', () => {
      const t = esp('ESP_REMOVAL');
      expect(sorted(t.h2Off.xfrm)).toEqual(['deletePolicy', ...Array(6).fill('deleteState')]);
      expect(t.h2Off.firewall).toBe(true);
      expect(t.h2).toEqual({ states: [], policies: [] });
      expect(t.h2Rules).not.toContain('MESHNET-ESP');
    });
  });
});
