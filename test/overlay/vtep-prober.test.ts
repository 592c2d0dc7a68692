import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { Lab } from '../lab/lab.js';
import { createLogger } from '../../src/log/logger.js';
import { VtepProber, type VtepProbeTarget } from '../../src/overlay/vtep-prober.js';
import { VTEP_PROBE_SYSCTL } from '../../src/overlay/vtep-socket.js';
import { allowPing, sandboxPair, setUnderlay, type SandboxPair } from '../../src/lab/vtep-lab.js';

// The prober as the agent runs it: echo probes from one host's sandbox to another's across a real
// VXLAN overlay (two lab hosts), judged by the liveness machine. The peer is killed the way node
// loss does it (its underlay link goes down) and brought back.

const INTERVAL = 100;

let lab: Lab;
let pair: SandboxPair;
const lines: Record<string, unknown>[] = [];
let changes = 0;
let prober: VtepProber;
let target: VtepProbeTarget;

const log = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.startsWith('{')) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  }),
});
const events = (name: string) => lines.filter((l) => l['event'] === name);
const stateOf = (peer: string) => prober.status().find((p) => p.peer === peer)?.state;

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} within ${timeoutMs} ms; peers: ${JSON.stringify(prober.status())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

beforeAll(async () => {
  lab = await Lab.create(2, { tag: 'vtep' });
  pair = await sandboxPair(lab);
  prober = new VtepProber({ intervalMs: INTERVAL, log, onChange: () => changes++ });
  // 'ghost' has an endpoint that nobody holds: it never answers, so it must never be judged.
  target = { netns: pair.sboxes[0], source: pair.ips[0], peers: [{ node: 'host-b', address: pair.ips[1] }, { node: 'ghost', address: '10.77.0.99' }] };
}, 60_000);

afterAll(async () => {
  prober?.close();
  await lab?.destroy();
});

describe('VTEP prober over a VXLAN overlay', () => {
  it('judges nothing while the sandbox refuses ping sockets, and says what to set', async () => {
    prober.follow(target);
    await until('a vtep.probe_socket_failed line', () => events('vtep.probe_socket_failed').length > 0);
    expect(String(events('vtep.probe_socket_failed')[0]!['error'])).toContain(VTEP_PROBE_SYSCTL.key);
    expect(prober.status().map((p) => p.state)).toEqual(['unknown', 'unknown']);
  });

  it("sees the peer's sandbox answer across the overlay once ping sockets are allowed", async () => {
    allowPing(pair.sboxes[0]);
    await until('host-b reachable', () => stateOf('host-b') === 'reachable');
    expect(events('vtep.probing')).toHaveLength(1);
    expect(prober.unreachable().size).toBe(0);
  });

  it('judges the peer unreachable when its underlay goes down, and reachable when it is back', async () => {
    const before = changes;
    await setUnderlay(lab, 1, false);
    const downMs = await until('host-b unreachable', () => prober.unreachable().has('host-b'));
    expect(changes).toBe(before + 1);
    expect(events('vtep.unreachable').at(-1)).toMatchObject({ level: 'warn', peer: 'host-b', address: pair.ips[1], misses: 3 });
    await setUnderlay(lab, 1, true);
    const upMs = await until('host-b reachable again', () => !prober.unreachable().has('host-b'));
    expect(changes).toBe(before + 2);
    expect(events('vtep.reachable').at(-1)).toMatchObject({ peer: 'host-b' });
    console.log(`VTEP probes every ${INTERVAL} ms: unreachable ${downMs} ms after the link went down, reachable ${upMs} ms after it came back`);
  });

  it('never judges a peer that never answered', () => {
    expect(stateOf('ghost')).toBe('unknown');
    expect(prober.unreachable().has('ghost')).toBe(false);
  });

  it('forgets a peer that leaves and stops probing when there is nothing to probe', () => {
    prober.follow({ ...target, peers: target.peers.filter((p) => p.node !== 'ghost') });
    expect(prober.status().map((p) => p.peer)).toEqual(['host-b']);
    prober.follow(null);
    expect(prober.status()).toEqual([]);
  });
});
