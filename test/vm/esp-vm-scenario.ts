/**
 * Runs inside the kernel test VM (compiled, started by vm-main.ts): the first time meshnet's
 * encrypted overlay meets a kernel with ESP. Two hosts (namespaces h1, h2) on an underlay routed
 * through a "wire" namespace w, a task on each (t1, t2) on two overlays built by OverlayDriver:
 * "enc" (VNI 4200, encrypted) and "plain" (VNI 4201). Each host runs meshnet's real encryption:
 * nodeEncryption's plan through EncryptionDriver (XFRM netlink) and its firewall through
 * IptablesWriter. The wire counts what crosses it (ESP, cleartext VXLAN per VNI, ESP per SPI),
 * an independent observer like a capture on the underlay. Prints sections; not a test itself.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { IptablesWriter } from '../../src/mesh/iptables-writer.js';
import { EncryptionDriver } from '../../src/overlay/encryption-driver.js';
import { vniMatch } from '../../src/overlay/encryption-firewall.js';
import { overlayUnderlayMtu } from '../../src/overlay/encryption-mtu.js';
import { spiFor } from '../../src/overlay/encryption-plan.js';
import { nodeEncryption } from '../../src/overlay/encryption-target.js';
import { rotateKeyring, type Keyring } from '../../src/overlay/keyring.js';
import { OverlayDriver } from '../../src/overlay/overlay-driver.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { withNetns } from '../../src/sandbox/netns-switch.js';
import { Rtnl } from '../../src/sandbox/rtnl.js';
import { Xfrm } from '../../src/sandbox/xfrm.js';
import { section, sh, stage } from './vm-console.js';

const ENC_VNI = 4200;
const PLAIN_VNI = 4201;
const ROTATION_MS = 12 * 3600_000;
const T0 = Date.UTC(2026, 0, 1);
const STOP_LOOP = '/tmp/stop-connection-loop';

interface Host {
  name: 'h1' | 'h2';
  ns: string;
  underlay: string;
  gateway: string;
  task: string;
  enc: string;
  plain: string;
  encMac: string;
  plainMac: string;
}

const HOSTS: [Host, Host] = [
  { name: 'h1', ns: '/run/netns/h1', underlay: '192.168.61.2', gateway: '192.168.61.1', task: '/run/netns/t1', enc: '10.0.42.2', plain: '10.0.43.2', encMac: '02:42:0a:00:2a:02', plainMac: '02:42:0a:00:2b:02' },
  { name: 'h2', ns: '/run/netns/h2', underlay: '192.168.62.2', gateway: '192.168.62.1', task: '/run/netns/t2', enc: '10.0.42.3', plain: '10.0.43.3', encMac: '02:42:0a:00:2a:03', plainMac: '02:42:0a:00:2b:03' },
];
const peerOf = (h: Host): Host => (h === HOSTS[0] ? HOSTS[1] : HOSTS[0]);

/** A fixed key seed per rotation (the store's random draw is not what is under test). */
const seed = (n: number) => ({ tag: 0x1000 + n, secret: n.toString(16).padStart(2, '0').repeat(32) });

const inNs = (ns: string, ...argv: string[]) => sh(['nsenter', `--net=/run/netns/${ns}`, ...argv]);

/** The underlay: h1 -- w -- h2, routed, configured through meshnet's rtnetlink (no iproute2 start per command). */
async function buildUnderlay(): Promise<void> {
  for (const [i, h] of HOSTS.entries()) {
    const r = Rtnl.open(h.ns);
    try {
      await r.setLink('lo', { up: true });
      await r.addAddress('e0', `${h.underlay}/24`);
      await r.setLink('e0', { up: true });
      await r.replaceRoute({ dst: 'default', gateway: h.gateway });
    } finally {
      r.close();
    }
    const w = Rtnl.open('/run/netns/w');
    try {
      await w.addAddress(`w${i + 1}`, `${h.gateway}/24`);
      await w.setLink(`w${i + 1}`, { up: true });
    } finally {
      w.close();
    }
  }
  withNetns('/run/netns/w', () => writeFileSync('/proc/sys/net/ipv4/ip_forward', '1'));
}

/** Counting rules on the wire's FORWARD: one per thing to count, named by its comment. */
function installWireCounters(tags: number[]): void {
  const [h1, h2] = HOSTS;
  const rules = [
    '-p esp -m comment --comment esp',
    '-p esp -f -m comment --comment esp_fragment',
    `-p udp -m udp --dport 4789 ${vniMatch(ENC_VNI)} -m comment --comment clear_enc`,
    `-p udp -m udp --dport 4789 ${vniMatch(PLAIN_VNI)} -m comment --comment clear_plain`,
    ...tags.map((t) => `-p esp -m esp --espspi ${spiFor(t, h1.underlay, h2.underlay)} -m comment --comment spi_${t.toString(16)}_h1h2`),
  ];
  const script = ['*filter', ':WIRE - [0:0]', '-A FORWARD -j WIRE', ...rules.map((r) => `-A WIRE ${r}`), 'COMMIT', ''].join('\n');
  const res = sh(['nsenter', '--net=/run/netns/w', 'iptables-restore', '--noflush'], script);
  if (res.startsWith('ERROR')) throw new Error(`wire counters: ${res}`);
}

/** The wire's packet counters, read as differences: applying XFRM or rules sends no packet, so one read ends a phase and starts the next. */
class WireCounters {
  private last: Record<string, number> = {};

  /** Starts counting from now. */
  mark(): void {
    this.last = this.read();
  }

  /** Packets per counter since the last mark or since(); marks again. */
  since(): Record<string, number> {
    const now = this.read();
    const out = Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (this.last[k] ?? 0)]));
    this.last = now;
    return out;
  }

  private read(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const m of inNs('w', 'iptables-save', '-c', '-t', 'filter').matchAll(/^\[(\d+):\d+\] -A WIRE .*--comment (\S+)/gm)) counts[m[2]!] = Number(m[1]);
    return counts;
  }
}

/** Both overlays on one host, as the agent builds them (its own overlay namespace folder per host). */
async function buildOverlays(h: Host): Promise<unknown[]> {
  const p = peerOf(h);
  const driver = new OverlayDriver({ netnsDir: new NetnsDir(`/run/mn-${h.name}`), hostNetns: h.ns });
  const results = [];
  for (const [name, vni, ifname, local, remote, mac, remoteMac, net, options] of [
    ['enc', ENC_VNI, 'eth0', h.enc, p.enc, h.encMac, p.encMac, '10.0.42', { encrypted: '' }],
    ['plain', PLAIN_VNI, 'eth1', h.plain, p.plain, h.plainMac, p.plainMac, '10.0.43', {}],
  ] as const) {
    const r = await driver.apply({
      network: { name, vni, subnet: `${net}.0/24`, gateway: `${net}.1` },
      // As node-plan.ts passes it: less ESP's growth on the encrypted network.
      underlayMtu: overlayUnderlayMtu(1500, options),
      localVtep: h.underlay,
      local: [{ id: `task-${h.name}`, sandbox: h.task, ifname, ip: local, mac }],
      remote: [{ ip: remote, mac: remoteMac, vtep: p.underlay }],
    });
    results.push(r.ops.length);
  }
  return results;
}

/** One host's encryption: the node plan (XFRM + firewall) applied as the agent applies it. */
class EncryptedHost {
  readonly xfrm: EncryptionDriver;
  readonly firewall: IptablesWriter;
  constructor(readonly h: Host) {
    this.xfrm = new EncryptionDriver({ hostNetns: h.ns });
    this.firewall = new IptablesWriter({ netns: h.ns });
  }

  /** Applies the plan for `ring` at `now` with `peers`; returns the XFRM op names and whether the firewall changed. */
  async apply(ring: Keyring | undefined, now: number, peers: string[] = [peerOf(this.h).underlay]): Promise<{ ops: string[]; firewallChanged: boolean }> {
    const target = nodeEncryption({
      local: this.h.underlay,
      overlays: [
        { vni: ENC_VNI, options: { encrypted: '' } },
        { vni: PLAIN_VNI, options: {} },
      ],
      peers,
      ring,
      now,
    });
    const fw = target.firewall ? await this.firewall.apply(target.firewall) : { changed: false };
    const { ops } = await this.xfrm.apply(target.plan);
    return { ops: ops.map((o) => o.op), firewallChanged: fw.changed };
  }

  /** What the kernel holds, without keys. */
  async dump(): Promise<{ states: { src: string; dst: string; spi: number; aead?: string; icvBits?: number; keyBytes?: number }[]; policies: { src: string; dst: string; dport: number; mark?: number; tmplSpi?: number }[] }> {
    const x = Xfrm.open(this.h.ns);
    try {
      const states = (await x.states()).map((s) => ({ src: s.src, dst: s.dst, spi: s.spi, aead: s.aead?.name, icvBits: s.aead?.icvBits, keyBytes: s.aead?.key.length }));
      const policies = (await x.policies()).map((p) => ({ src: p.src, dst: p.dst, dport: p.dport, mark: p.mark?.value, tmplSpi: p.tmpl?.spi }));
      return { states, policies };
    } finally {
      x.close();
    }
  }
}

/**
 * Probes from t1 in one shell (a fork of node costs the emulated CPU far more than busybox's):
 * for a ping, how many of its echoes came back; for a GET (one fresh TCP connection to t2's
 * httpd), the body or FAILED.
 */
function probeFromT1(probes: ({ ping: string; count: number } | { get: string })[]): (number | string)[] {
  const script = probes
    .map((p) =>
      'ping' in p
        ? `ping -c ${p.count} -W 1 ${p.ping} | grep -o '[0-9]* packets received' || echo '0 packets received'`
        : `r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${p.get} 80 | tail -n 1); echo "\${r:-FAILED}"`,
    )
    .join('; ');
  const lines = inNs('t1', 'sh', '-c', script).trim().split('\n');
  return probes.map((p, i) => ('ping' in p ? Number(/^(\d+) packets received/.exec(lines[i] ?? '')?.[1] ?? 0) : (lines[i] ?? 'FAILED').trim()));
}

/** iperf3 from t1 to t2 for `seconds`; bits per second received, or the error text. */
function iperf(address: string, seconds: number): number | string {
  const out = inNs('t1', 'iperf3', '-c', address, '-t', String(seconds), '-J');
  try {
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  } catch {
    return out.slice(0, 500);
  }
}

/** A loop of fresh TCP connections from t1 over the encrypted overlay, bounded in count and stopped by a file. */
class ConnectionLoop {
  lines: string[] = [];
  private done: Promise<void>;
  constructor(address: string, maxConnections: number) {
    const script = `i=0; while [ $i -lt ${maxConnections} ] && [ ! -f ${STOP_LOOP} ]; do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${address} 80 | tail -n 1); echo "\${r:-FAILED}"; i=$((i + 1)); done`;
    const child = spawn('nsenter', ['--net=/run/netns/t1', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts.map((l) => l.trim()));
    });
    this.done = new Promise((resolve) => child.on('close', () => resolve()));
  }

  /** Waits until `more` further connections finished (or the loop ended). */
  async waitFor(more: number): Promise<void> {
    const target = this.lines.length + more;
    let ended = false;
    void this.done.then(() => (ended = true));
    while (this.lines.length < target && !ended) await new Promise((r) => setTimeout(r, 50));
  }

  /** Stops the loop and waits for its last connection. */
  async stop(): Promise<void> {
    writeFileSync(STOP_LOOP, '');
    await this.done;
  }
}

/** The ESP half of the VM run. */
export async function espScenario(): Promise<void> {
  await buildUnderlay();
  const overlayOps = [await buildOverlays(HOSTS[0]), await buildOverlays(HOSTS[1])];
  const tags = [1, 2, 3, 4].map((n) => seed(n).tag);
  installWireCounters(tags);
  const hosts = HOSTS.map((h) => new EncryptedHost(h)) as [EncryptedHost, EncryptedHost];
  stage('esp_lab');

  // 1. Encrypted network, no keyring yet: the firewall's guard drops its VXLAN; never cleartext.
  const wireCounters = new WireCounters();
  wireCounters.mark();
  const noRing = [await hosts[0].apply(undefined, T0), await hosts[1].apply(undefined, T0)];
  const [enc, plain] = probeFromT1([
    { ping: HOSTS[1].enc, count: 1 },
    { ping: HOSTS[1].plain, count: 1 },
  ]);
  const noRingPing = { enc, plain };
  const wire = wireCounters.since();
  const t1 = Rtnl.open(HOSTS[0].task);
  const mtu = { enc: (await t1.requireLink('eth0')).mtu, plain: (await t1.requireLink('eth1')).mtu };
  t1.close();
  section('ESP_NO_RING', JSON.stringify({ overlayOps, apply: noRing, ping: noRingPing, wire, mtu }));

  // 2. The first key: ESP between the hosts, checked on the wire.
  let ring = rotateKeyring(undefined, T0, ROTATION_MS, seed(1));
  const first = [await hosts[0].apply(ring, T0), await hosts[1].apply(ring, T0)];
  const again = [await hosts[0].apply(ring, T0), await hosts[1].apply(ring, T0)];
  // A resync reads iptables-save back: a changed set would mean our rule text is not what the kernel prints.
  const resync = await hosts[0].firewall.apply(nodeEncryption({ local: HOSTS[0].underlay, overlays: [{ vni: ENC_VNI, options: { encrypted: '' } }], peers: [HOSTS[1].underlay], ring, now: T0 }).firewall!, { resync: true });
  const [pingEnc, pingPlain, getEnc, getPlain] = probeFromT1([{ ping: HOSTS[1].enc, count: 2 }, { ping: HOSTS[1].plain, count: 2 }, { get: HOSTS[1].enc }, { get: HOSTS[1].plain }]);
  const traffic = { pingEnc, pingPlain, getEnc, getPlain };
  const trafficWire = wireCounters.since();
  section(
    'ESP_TRAFFIC',
    JSON.stringify({
      first,
      again,
      resyncChanged: resync.changed,
      traffic,
      wire: trafficWire,
      h1: await hosts[0].dump(),
      h2: await hosts[1].dump(),
      rules: inNs('h1', 'iptables-save'),
    }),
  );
  stage('esp_traffic');

  // 3. Throughput: encrypted vs plain over the same hosts (TCG emulates the CPU: only indicative). Full-size
  //    frames of the encrypted network must fit the underlay as ESP: no fragment on the wire.
  const encBps = iperf(HOSTS[1].enc, 2);
  const encWire = wireCounters.since();
  const plainBps = iperf(HOSTS[1].plain, 2);
  section('ESP_THROUGHPUT', JSON.stringify({ encBps, plainBps, encWire }));
  stage('esp_throughput');

  // 4. Three rotations under a loop of fresh connections, each as the agents do it: install the new
  //    key (receive first), switch the sending SPI at its primaryAt, and the oldest key falls off the ring.
  const loop = new ConnectionLoop(HOSTS[1].enc, 400);
  await loop.waitFor(2);
  const steps: { step: string; h1: string[]; h2: string[] }[] = [];
  for (let n = 2; n <= 4; n++) {
    const at = T0 + (n - 1) * ROTATION_MS;
    ring = rotateKeyring(ring, at, ROTATION_MS, seed(n));
    steps.push({ step: `install ${n}`, h1: (await hosts[0].apply(ring, at)).ops, h2: (await hosts[1].apply(ring, at)).ops });
    await loop.waitFor(2);
    const primaryAt = ring.keys[0]!.primaryAt;
    if (n === 4) wireCounters.mark();
    steps.push({ step: `switch ${n}`, h1: (await hosts[0].apply(ring, primaryAt)).ops, h2: (await hosts[1].apply(ring, primaryAt)).ops });
    await loop.waitFor(2);
  }
  await loop.stop();
  const afterRotation = wireCounters.since();
  section(
    'ESP_ROTATION',
    JSON.stringify({
      steps,
      connections: loop.lines,
      ring: ring.keys.map((k) => k.tag),
      spis: Object.fromEntries(tags.map((t) => [t.toString(16), { h1h2: spiFor(t, HOSTS[0].underlay, HOSTS[1].underlay), h2h1: spiFor(t, HOSTS[1].underlay, HOSTS[0].underlay) }])),
      wireAfterLastSwitch: afterRotation,
      h1: await hosts[0].dump(),
    }),
  );
  stage('esp_rotation');

  // 5. h2 leaves h1's peers: h1 keeps nothing for it, and the guard still fails closed.
  const now = ring.keys[0]!.primaryAt;
  const removal = await hosts[0].apply(ring, now, []);
  const [pingEncAfter, pingPlainAfter] = probeFromT1([
    { ping: HOSTS[1].enc, count: 1 },
    { ping: HOSTS[1].plain, count: 1 },
  ]);
  const afterRemoval = { pingEnc: pingEncAfter, pingPlain: pingPlainAfter };
  const removalWire = wireCounters.since();
  const h1After = await hosts[0].dump();
  // And a host whose last encrypted overlay went: no XFRM object and no rule of meshnet's left.
  const h2Off = { xfrm: (await hosts[1].xfrm.apply(null)).ops.map((o) => o.op), firewall: (await hosts[1].firewall.apply(nodeEncryption({ local: HOSTS[1].underlay, overlays: [], peers: [], ring, now }).firewall!)).changed };
  section(
    'ESP_REMOVAL',
    JSON.stringify({
      removal,
      ping: afterRemoval,
      wire: removalWire,
      h1: h1After,
      ipXfrmH1: inNs('h1', 'sh', '-c', '/usr/sbin/ip xfrm state; /usr/sbin/ip xfrm policy'),
      h2Off,
      h2: await hosts[1].dump(),
      h2Rules: inNs('h2', 'iptables-save'),
    }),
  );
  for (const h of hosts) h.xfrm.close();
}
