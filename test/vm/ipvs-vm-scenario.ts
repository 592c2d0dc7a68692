/**
 * Runs inside the kernel test VM (compiled, started by vm-main.ts): programs IPVS through
 * meshnet's codec, client and backend, and prints what the kernel shows, between markers the
 * vitest side parses. Not a test file itself.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { withNetns } from '../../src/sandbox/netns-switch.js';
import { getSysctl, setSysctl } from '../../src/sandbox/sysctl.js';
import { readIpvsTable } from '../../src/explain/ipvs-view-reader.js';
import type { LbTable } from '../../src/vip/lb-table.js';
import type { IpvsDest, IpvsService } from '../../src/vip/ipvs/codec.js';
import { IpvsClient, IpvsRequestError, probeIpvs } from '../../src/vip/ipvs/ipvs-client.js';
import { IpvsBackend, ipvsSysctls, ipvsSysctlTargets, type CommandRunner } from '../../src/vip/ipvs/ipvs-backend.js';
import { section, sh, stage } from './vm-console.js';

const LB_NS = '/run/netns/lb';
/** Stands for a task namespace: b3, the backend behind the overlay-like hop. */
const TASK_NS = '/run/netns/b3';

/** Runs a command inside the lb namespace, feeding `input` on stdin. */
const runInLb: CommandRunner = (argv, input) =>
  new Promise((resolve) => {
    const child = spawn('nsenter', [`--net=${LB_NS}`, ...argv], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    // A command that exits before reading its input makes the write fail with EPIPE; its exit code tells the story.
    child.stdin?.on('error', () => {});
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    child.stdin?.end(input);
  });

const rr = (address: string, port: number, scheduler = 'rr'): IpvsService => ({
  key: { kind: 'vip', family: 'inet', protocol: 'tcp', address, port },
  scheduler,
  flags: 0,
  timeout: 0,
  netmaskPrefix: 32,
});
const dest = (address: string, port: number, weight = 1): IpvsDest => ({ family: 'inet', address, port, forward: 'masq', weight, upperThreshold: 0, lowerThreshold: 0 });

/** Part 1: the client on the VM's root namespace, one request per IPVS operation. */
async function programThroughClient(): Promise<void> {
  const t0 = performance.now();
  const c = await IpvsClient.open();
  const errors: string[] = [];
  await c.setTimeouts({ tcp: 1800, tcpFin: 60, udp: 120 });
  const timeouts = await c.getTimeouts();

  const a = rr('10.10.0.1', 80);
  await c.addService(a);
  await c.addDest(a.key, dest('10.20.0.2', 8080));
  await c.addDest(a.key, dest('10.20.0.3', 8080));
  await c.addDest(a.key, dest('10.20.0.9', 8080));
  await c.deleteDest(a.key, { family: 'inet', address: '10.20.0.9', port: 8080 });
  try {
    await c.addService(a);
  } catch (e) {
    errors.push(e instanceof IpvsRequestError ? `duplicate service: ${e.errno}` : String(e));
  }

  const fwm: IpvsService = { key: { kind: 'fwmark', family: 'inet', fwmark: 42 }, scheduler: 'rr', flags: 1, timeout: 300, netmaskPrefix: 24 };
  await c.addService(fwm);
  await c.addDest(fwm.key, dest('10.20.0.4', 0));

  const w = rr('10.10.0.2', 443, 'wrr');
  await c.addService(w);
  await c.addDest(w.key, dest('10.20.0.2', 443, 5));
  await c.addDest(w.key, dest('10.20.0.3', 443, 2));
  await c.updateDest(w.key, dest('10.20.0.3', 443, 0));

  const gone: IpvsService = { ...rr('10.10.0.3', 53, 'sh'), key: { kind: 'vip', family: 'inet', protocol: 'udp', address: '10.10.0.3', port: 53 } };
  await c.addService(gone);
  await c.deleteService(gone.key);
  try {
    await c.deleteService(gone.key);
  } catch (e) {
    errors.push(e instanceof IpvsRequestError ? `deleted service again: ${e.errno}` : String(e));
  }

  // IPv6: 16-byte address, and the persistence netmask travels as a prefix length (128).
  const v6: IpvsService = { key: { kind: 'vip', family: 'inet6', protocol: 'tcp', address: 'fd00::1', port: 80 }, scheduler: 'rr', flags: 1, timeout: 60, netmaskPrefix: 128 };
  await c.addService(v6);
  await c.addDest(v6.key, { ...dest('fd00::2', 8080), family: 'inet6' });

  await c.addService(rr('10.10.0.4', 80, 'lc'));
  const mh = rr('10.10.0.5', 80, 'mh');
  await c.addService(mh);
  await c.updateService({ ...mh, scheduler: 'sh' });
  const ms = performance.now() - t0;
  const probe = await probeIpvs();

  const services = await c.listServices();
  const readBack = [];
  for (const s of services) readBack.push({ service: s, dests: await c.listDests(s.key) });
  c.close();
  section('OURS_PROGRAM', JSON.stringify({ timeouts, services: readBack, errors, ms, probe }));
  section('IPVSADM_LN', sh(['ipvsadm', '-Ln']));
  section('IPVSADM_TIMEOUT', sh(['ipvsadm', '-Ln', '--timeout']));
  section('PROC_IP_VS', readFileSync('/proc/net/ip_vs', 'utf8'));
}

/** One HTTP/1.0 GET with busybox nc from namespace `ns` (busybox-static's wget crashes); returns the body's first line. */
function httpGet(ns: string, address: string, port: number): string {
  const reply = sh(['nsenter', `--net=/run/netns/${ns}`, 'nc', '-w', '3', address, String(port)], 'GET / HTTP/1.0\r\n\r\n');
  const at = reply.indexOf('\r\n\r\n');
  return at < 0 ? reply.trim() : reply.slice(at + 4).trim().split('\n')[0]!;
}

/**
 * Fetches http://address:port/ from namespace `ns` (the client c unless told) `count` times, in
 * one shell so the emulated CPU forks node once, not once per request; returns each body's first line.
 */
function fetchFromClient(address: string, port: number, count: number, ns = 'c', waitSeconds = 3): string[] {
  const script = `i=0; while [ $i -lt ${count} ]; do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w ${waitSeconds} ${address} ${port} | tail -n 1); echo "\${r:-FAILED}"; i=$((i + 1)); done`;
  const out = sh(['nsenter', `--net=/run/netns/${ns}`, 'sh', '-c', script]);
  return out.trim().split('\n').map((l) => l.trim());
}

/** Part 2: LbBackend.apply on the lb namespace, entered through the enterNamespace hook, with traffic. */
async function balanceTraffic(): Promise<void> {
  // As an IPVS node's agent does: the plan's sysctl targets for its IPVS namespaces, through the reconciler's setter.
  for (const t of ipvsSysctlTargets([LB_NS, TASK_NS])) setSysctl(t.netns, t.key, t.value);
  const read = (ns: string) => Object.fromEntries(Object.keys(ipvsSysctls()).map((k) => [k, getSysctl(ns, k)]));
  const sysctls = read(LB_NS);
  const taskSysctls = read(TASK_NS);
  const events: Record<string, unknown>[] = [];
  const { backend, close } = await IpvsBackend.open({
    enterNamespace: (fn) => withNetns(LB_NS, fn),
    run: runInLb,
    log: (e) => events.push(e),
  });
  const backends = [
    { address: '10.2.0.2', port: 0, weight: 1 },
    { address: '10.3.0.2', port: 0, weight: 1 },
  ];
  const table: LbTable = {
    services: [
      { id: 'web', frontend: { kind: 'vip', address: '10.99.0.100', protocol: 'tcp', port: 80 }, scheduler: 'rr', backends },
      { id: 'pub-8080', frontend: { kind: 'fwmark', mark: 7, protocol: 'tcp', port: 8080, address: '10.99.0.101' }, scheduler: 'wrr', backends },
    ],
  };
  const first = await backend.apply(table);
  const second = await backend.apply(table);
  const readBack = await backend.read();
  const ipvsadmLb = sh(['nsenter', `--net=${LB_NS}`, 'ipvsadm', '-Ln']);
  const mangle = sh(['nsenter', `--net=${LB_NS}`, 'iptables-save', '-t', 'mangle']);
  const vip = fetchFromClient('10.99.0.100', 80, 8);
  const fwmark = fetchFromClient('10.99.0.101', 8080, 8);
  if (![...vip, ...fwmark].every((b) => b === 'b1' || b === 'b2')) {
    // Enough of the lab's state to tell a routing problem from a balancing one.
    const lb = (...argv: string[]) => sh(['nsenter', `--net=${LB_NS}`, ...argv]);
    section(
      'DIAG',
      [
        lb('/usr/sbin/ip', 'addr'),
        lb('/usr/sbin/ip', 'route'),
        lb('ipvsadm', '-Lnc'),
        lb('ipvsadm', '-Ln', '--stats'),
        httpGet('lb', '10.2.0.2', 80),
        sh(['nsenter', '--net=/run/netns/c', 'ping', '-c', '1', '-W', '2', '10.1.0.1']),
        sh(['nsenter', '--net=/run/netns/c', '/usr/sbin/ip', 'route']),
        sh(['nsenter', '--net=/run/netns/b1', '/usr/sbin/ip', 'route']),
        lb('cat', '/proc/sys/net/ipv4/ip_forward'),
      ].join('\n----\n'),
    );
  }

  const drain: LbTable = { services: table.services.map((s) => ({ ...s, backends: [{ ...backends[0]!, weight: 0 }, backends[1]!] })) };
  const drainReport = await backend.apply(drain);
  const ipvsadmDrained = sh(['nsenter', `--net=${LB_NS}`, 'ipvsadm', '-Ln']);
  const drained = fetchFromClient('10.99.0.100', 80, 6);

  await backend.destroy();
  close();
  const afterDestroy = sh(['nsenter', `--net=${LB_NS}`, 'ipvsadm', '-Ln']);
  const mangleAfter = sh(['nsenter', `--net=${LB_NS}`, 'iptables-save', '-t', 'mangle']);
  const rootAfter = sh(['ipvsadm', '-Ln']);
  section(
    'TRAFFIC',
    JSON.stringify({ sysctls, taskSysctls, first, second, readBack, vip, fwmark, drainReport, drained, events, ipvsadmLb, mangle, ipvsadmDrained, afterDestroy, mangleAfter, rootAfter }),
  );
}

/** Part 3: an every-port VIP (frontend port 0) becomes an fwmark service fed by a MARK rule on the VIP. */
async function everyPortVip(): Promise<void> {
  const { backend, close } = await IpvsBackend.open({ enterNamespace: (fn) => withNetns(LB_NS, fn), run: runInLb });
  const table: LbTable = {
    services: [
      {
        id: 'any-tcp0',
        frontend: { kind: 'vip', address: '10.99.0.102', protocol: 'tcp', port: 0 },
        scheduler: 'rr',
        backends: [
          { address: '10.2.0.2', port: 0, weight: 1 },
          { address: '10.3.0.2', port: 0, weight: 1 },
        ],
      },
    ],
  };
  const first = await backend.apply(table);
  const second = await backend.apply(table);
  const readBack = await backend.read();
  const ipvsadm = sh(['nsenter', `--net=${LB_NS}`, 'ipvsadm', '-Ln']);
  const mangle = sh(['nsenter', `--net=${LB_NS}`, 'iptables-save', '-t', 'mangle']);
  const port80 = fetchFromClient('10.99.0.102', 80, 4);
  const port8080 = fetchFromClient('10.99.0.102', 8080, 4);
  await backend.destroy();
  close();
  section('EVERYPORT', JSON.stringify({ first, second, readBack, ipvsadm, mangle, port80, port8080 }));
}

/** Where a part's guest time goes, step by step, so its cost can be reported and kept small. */
function stopwatch(): { laps: Record<string, number>; lap: (name: string) => void } {
  const laps: Record<string, number> = {};
  let since = performance.now();
  return {
    laps,
    lap: (name) => {
      const now = performance.now();
      laps[name] = Math.round(now - since);
      since = now;
    },
  };
}

/**
 * Part 4: a v6 VIP as a dual-stack network gives it (every port, TCP and UDP, affinity on one): AF_INET6 fwmark
 * services fed by ip6tables marks, two v6 backends reached from a client namespace and from lb's own sockets (the
 * OUTPUT path a task's connections take), then one backend drained and removed.
 */
async function v6Vip(): Promise<void> {
  const { laps, lap } = stopwatch();
  const { backend, close } = await IpvsBackend.open({ enterNamespace: (fn) => withNetns(LB_NS, fn), run: runInLb });
  const VIP6 = 'fd00:99::102';
  const b = (address: string, weight = 1) => ({ address, port: 0, weight });
  const table = (backends: { address: string; port: number; weight: number }[]): LbTable => ({
    services: [
      { id: 'web6-tcp0', frontend: { kind: 'vip', address: VIP6, protocol: 'tcp', port: 0 }, scheduler: 'rr', backends },
      { id: 'web6-udp0', frontend: { kind: 'vip', address: VIP6, protocol: 'udp', port: 0 }, scheduler: 'rr', persistenceSeconds: 60, backends },
    ],
  });
  const lb = (...argv: string[]) => sh(['nsenter', `--net=${LB_NS}`, ...argv]);
  const both = table([b('fd00:2::2'), b('fd00:3::2')]);
  const first = await backend.apply(both);
  const second = await backend.apply(both);
  const readBack = await backend.read();
  lap('apply');
  const ipvsadm = lb('ipvsadm', '-Ln');
  const mangle6 = lb('ip6tables-save', '-t', 'mangle');
  const mangle4 = lb('iptables-save', '-t', 'mangle');
  lap('show');
  const port80 = fetchFromClient(VIP6, 80, 4);
  const port8080 = fetchFromClient(VIP6, 8080, 2);
  const local = fetchFromClient(VIP6, 80, 2, 'lb');
  lap('traffic');
  const drainReport = await backend.apply(table([b('fd00:2::2', 0), b('fd00:3::2')]));
  const ipvsadmDrained = lb('ipvsadm', '-Ln');
  const drained = fetchFromClient(VIP6, 80, 2);
  const removeReport = await backend.apply(table([b('fd00:3::2')]));
  const ipvsadmRemoved = lb('ipvsadm', '-Ln');
  const removed = fetchFromClient(VIP6, 80, 2);
  lap('drainRemove');
  await backend.destroy();
  close();
  const afterDestroy = lb('ipvsadm', '-Ln');
  const mangle6After = lb('ip6tables-save', '-t', 'mangle');
  lap('destroy');
  section(
    'V6VIP',
    JSON.stringify({ laps, first, second, readBack, ipvsadm, mangle6, mangle4, port80, port8080, local, drainReport, ipvsadmDrained, drained, removeReport, ipvsadmRemoved, removed, afterDestroy, mangle6After }),
  );
}

/**
 * Part 5: a published port as the ingress sandbox holds it (fwmark service with sourceNat) balanced to b3, which
 * has no route back to the client, as a task on another host has none through this sandbox. Without the SNAT rule
 * the connection fails; with it, it is answered. Explain's IPVS reader then reads the service, mark and SNAT back.
 */
async function publishedPortSnat(): Promise<void> {
  const { laps, lap } = stopwatch();
  const lb = (...argv: string[]) => sh(['nsenter', `--net=${LB_NS}`, ...argv]);
  const { backend, close } = await IpvsBackend.open({ enterNamespace: (fn) => withNetns(LB_NS, fn), run: runInLb });
  const port = (sourceNat?: string): LbTable => ({
    services: [
      {
        id: 'ingress-tcp-8000',
        frontend: { kind: 'fwmark', mark: 0x2040, protocol: 'tcp', port: 8000, address: '10.99.0.101' },
        scheduler: 'rr',
        ...(sourceNat ? { sourceNat } : {}),
        backends: [{ address: '10.4.0.2', port: 0, weight: 1 }],
      },
    ],
  });
  const plain = await backend.apply(port());
  const natPlain = lb('iptables-save', '-t', 'nat');
  // One try with a 1 s wait: b3's answer has nowhere to go.
  const withoutSnat = fetchFromClient('10.99.0.101', 8000, 1, 'c', 1);
  lap('withoutSnat');
  const snat = await backend.apply(port('10.4.0.1'));
  const again = await backend.apply(port('10.4.0.1'));
  const nat = lb('iptables-save', '-t', 'nat');
  const readBack = await backend.read();
  const withSnat = fetchFromClient('10.99.0.101', 8000, 2);
  lap('withSnat');
  const errors: string[] = [];
  const explainView = await readIpvsTable(LB_NS, errors);
  lap('explainRead');
  await backend.destroy();
  close();
  const natAfter = lb('iptables-save', '-t', 'nat');
  lap('destroy');
  section('SNAT', JSON.stringify({ laps, plain, natPlain, withoutSnat, snat, again, nat, readBack, withSnat, explainView, errors, natAfter }));
}

/** The IPVS half of the VM run: the client, the backend with traffic, the every-port VIP, the v6 VIP. */
export async function ipvsScenario(): Promise<void> {
  await programThroughClient();
  stage('programmed');
  await balanceTraffic();
  stage('balanced');
  await everyPortVip();
  stage('every_port');
  await v6Vip();
  stage('v6_vip');
  await publishedPortSnat();
}
