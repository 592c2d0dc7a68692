/**
 * Overlay benchmark: time to attach 100 endpoints and to program 1,000 remote peers on one lab host,
 * and the no-op re-apply of each state. Run: npm run build && node dist/bench/overlay/attach-and-peers.js
 */
import { performance } from 'node:perf_hooks';
import { Lab } from '../../test/lab/lab.js';
import { OverlayDriver } from '../../src/overlay/overlay-driver.js';
import type { OverlayInput } from '../../src/overlay/overlay-spec.js';
import { intToIpv4, ipv4ToInt, macForIpv4 } from '../../src/sandbox/addresses.js';

const ENDPOINTS = Number(process.env.ENDPOINTS ?? 100);
const PEERS = Number(process.env.PEERS ?? 1000);

async function main(): Promise<void> {
  const lab = await Lab.create(1, { tag: 'bench-overlay' });
  try {
    const host = lab.hosts[0]!;
    const driver = new OverlayDriver({ netnsDir: host.dir, hostNetns: host.netns });
    const network = { name: 'bench', vni: 5000, subnet: '10.60.0.0/16', gateway: '10.60.0.1' };
    const base = ipv4ToInt('10.60.1.0');
    const sandboxes: string[] = [];
    for (let i = 0; i < ENDPOINTS; i++) sandboxes.push(lab.netns(`t${i}`, 0));
    const input: OverlayInput = { network, underlayMtu: 1500, local: [], remote: [] };
    await driver.apply(input); // the network itself, not counted

    input.local = sandboxes.map((sandbox, i) => {
      const ip = intToIpv4(base + i);
      return { id: `task-${i}`, sandbox, ifname: 'eth0', ip, mac: macForIpv4(ip) };
    });
    let t = performance.now();
    const attach = await driver.apply(input);
    const attachMs = performance.now() - t;

    const peerBase = ipv4ToInt('10.60.100.0');
    input.remote = Array.from({ length: PEERS }, (_, i) => {
      const ip = intToIpv4(peerBase + i);
      return { ip, mac: macForIpv4(ip), vtep: `192.0.2.${10 + (i % 200)}` };
    });
    t = performance.now();
    const peers = await driver.apply(input);
    const peersMs = performance.now() - t;

    t = performance.now();
    const noop = await driver.apply(input);
    const noopMs = performance.now() - t;

    const row = (what: string, ms: number, ops: number) =>
      console.log(`${what.padEnd(34)} ${ms.toFixed(0).padStart(7)} ms  ${String(ops).padStart(5)} ops  ${(ms / Math.max(ops, 1)).toFixed(2)} ms/op`);
    console.log(`overlay bench: ${ENDPOINTS} endpoints, ${PEERS} peers, node ${process.version}`);
    row(`attach ${ENDPOINTS} endpoints`, attachMs, attach.ops.length);
    row(`program ${PEERS} peers (FDB + neighbour)`, peersMs, peers.ops.length);
    row('re-apply the same state (no-op)', noopMs, noop.ops.length);
  } finally {
    await lab.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
