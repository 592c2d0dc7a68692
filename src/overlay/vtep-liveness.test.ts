import { describe, expect, it } from 'vitest';
import { VtepLiveness, type VtepChange } from './vtep-liveness.js';

const INTERVAL = 400;

/** A fake clock driving the machine: each step ticks, then the peers listed in `answering` answer. */
function driver(peers: string[]) {
  const lv = new VtepLiveness({ intervalMs: INTERVAL });
  lv.setPeers(peers);
  let now = 1_000_000;
  const log: { at: number; change: VtepChange }[] = [];
  const step = (answering: readonly string[], advance = INTERVAL) => {
    now += advance;
    const { probes, changes } = lv.tick(now);
    for (const c of changes) log.push({ at: now, change: c });
    for (const p of probes) {
      if (!answering.includes(p.peer)) continue;
      const c = lv.answered(p.peer, p.seq);
      if (c) log.push({ at: now, change: c });
    }
    return probes;
  };
  return { lv, step, log, now: () => now };
}

describe('VtepLiveness', () => {
  it('asks for one probe per peer per tick, with distinct sequence numbers', () => {
    const d = driver(['b', 'c']);
    const first = d.step([]);
    const second = d.step([]);
    expect(first.map((p) => p.peer).sort()).toEqual(['b', 'c']);
    expect(new Set([...first, ...second].map((p) => p.seq)).size).toBe(4);
  });

  it('judges a peer unreachable after 3 missed probes in a row, and only then', () => {
    const d = driver(['b', 'c']);
    d.step(['b', 'c']);
    d.step(['b', 'c']);
    const deadAt = d.now();
    d.step(['c']); // probe 1 to b goes unanswered
    d.step(['c']); // 1 miss judged
    d.step(['c']); // 2 misses
    expect(d.lv.unreachable().size).toBe(0);
    d.step(['c']); // 3 misses
    expect([...d.lv.unreachable()]).toEqual(['b']);
    expect(d.log).toEqual([{ at: deadAt + 4 * INTERVAL, change: { peer: 'b', state: 'unreachable', misses: 3 } }]);
    expect(d.lv.status()).toEqual([
      { peer: 'b', state: 'unreachable', misses: 3 },
      { peer: 'c', state: 'reachable', misses: 0 },
    ]);
  });

  it('forgives fewer than 3 misses: one answer resets the count', () => {
    const d = driver(['b']);
    d.step(['b']);
    for (let i = 0; i < 10; i++) {
      d.step([]);
      d.step([]);
      d.step(['b']);
    }
    expect(d.lv.unreachable().size).toBe(0);
    expect(d.log).toEqual([]);
  });

  it('brings a peer back after 2 answers in a row, not after 1', () => {
    const d = driver(['b']);
    d.step(['b']);
    for (let i = 0; i < 4; i++) d.step([]);
    expect(d.lv.unreachable().has('b')).toBe(true);
    d.step(['b']);
    d.step([]);
    d.step(['b']);
    expect(d.lv.unreachable().has('b')).toBe(true);
    d.step(['b']);
    expect(d.lv.unreachable().size).toBe(0);
    expect(d.log.map((l) => l.change.state)).toEqual(['unreachable', 'reachable']);
  });

  it('never judges a peer that never answered (not wired yet, or its path drops echoes)', () => {
    const d = driver(['b']);
    for (let i = 0; i < 20; i++) d.step([]);
    expect(d.lv.unreachable().size).toBe(0);
    expect(d.lv.status()).toEqual([{ peer: 'b', state: 'unknown', misses: 19 }]);
  });

  it('judges nothing on a tick that comes late after a stalled event loop, and judges on the next one', () => {
    const d = driver(['b']);
    d.step(['b']);
    d.step([]);
    d.step([]);
    // The loop stalled 3 s: answers may sit unread in the socket, so the late tick judges nothing.
    d.step([], 3000);
    expect(d.lv.unreachable().size).toBe(0);
    d.step([]);
    expect(d.lv.unreachable().has('b')).toBe(true);
  });

  it('ignores answers to probes it did not send or already judged', () => {
    const d = driver(['b']);
    const [p] = d.step([]);
    expect(d.lv.answered('b', (p!.seq + 100) & 0xffff)).toBeNull();
    expect(d.lv.answered('x', p!.seq)).toBeNull();
    d.step([]);
    // Judged missed on this tick: a late answer no longer counts.
    expect(d.lv.answered('b', p!.seq)).toBeNull();
    expect(d.lv.status()[0]!.state).toBe('unknown');
  });

  it('keeps the same set object until the verdicts change', () => {
    const d = driver(['b']);
    const before = d.lv.unreachable();
    d.step(['b']);
    d.step(['b']);
    expect(d.lv.unreachable()).toBe(before);
    for (let i = 0; i < 4; i++) d.step([]);
    expect(d.lv.unreachable()).not.toBe(before);
  });

  it('drops a peer that leaves, reporting it when it leaves the unreachable set', () => {
    const d = driver(['b', 'c']);
    d.step(['b', 'c']);
    for (let i = 0; i < 4; i++) d.step(['c']);
    expect(d.lv.setPeers(['c'])).toEqual([{ peer: 'b', state: 'forgotten', misses: 3 }]);
    expect(d.lv.unreachable().size).toBe(0);
    expect(d.lv.setPeers(['c', 'd'])).toEqual([]);
    expect(d.lv.status().map((s) => `${s.peer}:${s.state}`)).toEqual(['c:reachable', 'd:unknown']);
  });

  it('refuses an interval that is not positive', () => {
    expect(() => new VtepLiveness({ intervalMs: 0 })).toThrow(/positive/);
  });
});
