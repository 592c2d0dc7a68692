/**
 * Whether each peer's VTEP answers over the overlay, judged from echo probes with hysteresis.
 * Pure: the prober (vtep-prober.ts) feeds it the clock, the probes it sent and the answers it got,
 * and sends what `tick` asks for. A peer that never answered stays 'unknown' and is never judged
 * unreachable: a node whose sandbox is not wired yet, or whose path drops echoes, must not lose its
 * backends on silence alone; only a peer seen alive over the data path can be seen dying there.
 */

/** unknown: never answered; reachable: answers; unreachable: missed `missesToDown` probes in a row. */
export type VtepState = 'unknown' | 'reachable' | 'unreachable';

/** A peer's verdict changed: it became unreachable, reachable again, or it left while unreachable. */
export interface VtepChange {
  peer: string;
  state: 'reachable' | 'unreachable' | 'forgotten';
  /** Probes missed in a row when it went unreachable (0 when it came back). */
  misses: number;
}

/** One peer as the prober sees it (metrics, `inspect`). */
export interface VtepPeerStatus {
  peer: string;
  state: VtepState;
  misses: number;
}

/** One echo to send now. */
export interface VtepProbe {
  peer: string;
  /** 16 bits, as an ICMP echo's sequence field carries it. */
  seq: number;
}

/** How probes are judged. */
export interface VtepLivenessOptions {
  /** Milliseconds between probes to each peer; a probe still unanswered at the next tick is a miss. */
  intervalMs: number;
  /** Misses in a row that make a reachable peer unreachable (default 3). */
  missesToDown?: number;
  /** Answers in a row that make an unreachable peer reachable again (default 2). */
  answersToUp?: number;
}

interface PeerState {
  state: VtepState;
  misses: number;
  answers: number;
  /** seq -> when it was sent, for probes not yet answered or judged. */
  outstanding: Map<number, number>;
}

/** Probes unanswered this many intervals after they went out are forgotten, so a silent peer costs O(1). */
const FORGET_AFTER_INTERVALS = 8;

/** The liveness of every probed peer; `unreachable()` is the set the node plan leaves out. */
export class VtepLiveness {
  private readonly peers = new Map<string, PeerState>();
  private readonly missesToDown: number;
  private readonly answersToUp: number;
  private seq = 0;
  private lastTick: number | null = null;
  private down: ReadonlySet<string> = new Set();

  constructor(private readonly opts: VtepLivenessOptions) {
    if (!(opts.intervalMs > 0)) throw new RangeError(`VTEP probe interval must be positive, got ${opts.intervalMs} ms`);
    this.missesToDown = opts.missesToDown ?? 3;
    this.answersToUp = opts.answersToUp ?? 2;
  }

  /** The peers to probe: new ones start unknown, ones that left are forgotten. Returns what that changed. */
  setPeers(ids: Iterable<string>): VtepChange[] {
    const wanted = new Set(ids);
    const changes: VtepChange[] = [];
    for (const [id, p] of this.peers) {
      if (wanted.has(id)) continue;
      this.peers.delete(id);
      // A peer that left while unreachable leaves the set: it is the store's to judge now.
      if (p.state === 'unreachable') changes.push({ peer: id, state: 'forgotten', misses: p.misses });
    }
    for (const id of wanted) if (!this.peers.has(id)) this.peers.set(id, { state: 'unknown', misses: 0, answers: 0, outstanding: new Map() });
    if (changes.length > 0) this.refreshDown();
    return changes;
  }

  /**
   * The clock moved to `now`: probes older than the interval count as missed, and one new probe per
   * peer is due. A tick that comes more than two intervals late judges nothing: the event loop was
   * stalled, and answers may still wait unread in the socket; they are judged on the next tick.
   */
  tick(now: number): { probes: VtepProbe[]; changes: VtepChange[] } {
    const stalled = this.lastTick !== null && now - this.lastTick > 2 * this.opts.intervalMs;
    this.lastTick = now;
    const changes: VtepChange[] = [];
    const probes: VtepProbe[] = [];
    for (const [id, p] of this.peers) {
      for (const [seq, sentAt] of p.outstanding) {
        const age = now - sentAt;
        if (stalled) {
          if (age >= FORGET_AFTER_INTERVALS * this.opts.intervalMs) p.outstanding.delete(seq);
          continue;
        }
        // Sent on the previous tick (timers may fire a hair early): unanswered by now, it is a miss.
        if (age < this.opts.intervalMs / 2) continue;
        p.outstanding.delete(seq);
        const change = this.missed(id, p);
        if (change) changes.push(change);
      }
      this.seq = (this.seq + 1) & 0xffff;
      p.outstanding.set(this.seq, now);
      probes.push({ peer: id, seq: this.seq });
    }
    if (changes.length > 0) this.refreshDown();
    return { probes, changes };
  }

  /** An answer to probe `seq` came from `peer`; a change when it brings the peer back. Late or unknown answers count for nothing. */
  answered(peer: string, seq: number): VtepChange | null {
    const p = this.peers.get(peer);
    if (!p || !p.outstanding.delete(seq)) return null;
    p.misses = 0;
    p.answers++;
    if (p.state === 'unknown') p.state = 'reachable';
    if (p.state !== 'unreachable' || p.answers < this.answersToUp) return null;
    p.state = 'reachable';
    this.refreshDown();
    return { peer, state: 'reachable', misses: 0 };
  }

  /** Peers judged unreachable; the same object until the set changes (plans compare it by identity). */
  unreachable(): ReadonlySet<string> {
    return this.down;
  }

  /** Every probed peer with its verdict, sorted by id. */
  status(): VtepPeerStatus[] {
    return [...this.peers].map(([peer, p]) => ({ peer, state: p.state, misses: p.misses })).sort((a, b) => a.peer.localeCompare(b.peer));
  }

  private missed(id: string, p: PeerState): VtepChange | null {
    p.answers = 0;
    p.misses++;
    if (p.state !== 'reachable' || p.misses < this.missesToDown) return null;
    p.state = 'unreachable';
    return { peer: id, state: 'unreachable', misses: p.misses };
  }

  private refreshDown(): void {
    this.down = new Set([...this.peers].filter(([, p]) => p.state === 'unreachable').map(([id]) => id));
  }
}
