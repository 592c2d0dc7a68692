import type { Logger } from '../log/logger.js';
import { netnsIdentity } from '../sandbox/netns-switch.js';
import { VtepLiveness, type VtepChange, type VtepPeerStatus } from './vtep-liveness.js';
import { EchoSocket } from './vtep-socket.js';

/** Where probes go from, and to whom: this node's ingress sandbox and every peer's. */
export interface VtepProbeTarget {
  /** The ingress sandbox's namespace file. */
  netns: string;
  /** This node's ingress-overlay address: every probe's source. */
  source: string;
  /** Each peer's node id and ingress-overlay address. */
  peers: readonly { node: string; address: string }[];
}

/** How the prober runs. */
export interface VtepProberOptions {
  /** Milliseconds between probes to each peer (> 0). */
  intervalMs: number;
  log: Logger;
  /** The unreachable set changed (called after the change is logged). */
  onChange: () => void;
  /** Monotonic milliseconds (tests give their own). */
  now?: () => number;
}

interface OpenSocket {
  socket: EchoSocket;
  netns: string;
  source: string;
  /** device:inode of the namespace it was made in: a re-made sandbox needs a new socket. */
  identity: string;
}

/**
 * Every interval: reads the answers to the last round of echoes, lets the liveness machine judge
 * (vtep-liveness.ts decides; this only sends, reads and logs), and sends the next round, one echo per
 * peer. One socket and one timer for all peers, no process, one event-loop wake-up per interval.
 */
export class VtepProber {
  private readonly liveness: VtepLiveness;
  private readonly now: () => number;
  private target: VtepProbeTarget | null = null;
  private targetKey = '';
  private byAddress = new Map<string, string>();
  private byNode = new Map<string, string>();
  private open: OpenSocket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastError = '';
  private closed = false;

  constructor(private readonly opts: VtepProberOptions) {
    this.liveness = new VtepLiveness({ intervalMs: opts.intervalMs });
    this.now = opts.now ?? (() => performance.now());
  }

  /** Probes `target` from now on (null: nothing to probe; the node has no ingress sandbox). Cheap when it did not change. */
  follow(target: VtepProbeTarget | null): void {
    const key = target ? JSON.stringify(target) : '';
    if (this.closed || key === this.targetKey) return;
    this.targetKey = key;
    this.target = target;
    this.byAddress = new Map((target?.peers ?? []).map((p) => [p.address, p.node]));
    this.byNode = new Map((target?.peers ?? []).map((p) => [p.node, p.address]));
    if (!target || (this.open && (this.open.netns !== target.netns || this.open.source !== target.source))) this.closeSocket();
    this.report(this.liveness.setPeers((target?.peers ?? []).map((p) => p.node)));
    // A node alone (or without an ingress sandbox) has nobody to probe: no timer wakes its agent.
    const probing = (target?.peers.length ?? 0) > 0;
    if (probing && !this.timer) {
      this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
      this.timer.unref();
    } else if (!probing && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
      this.closeSocket();
    }
  }

  /** Peers judged unreachable; the same object until the verdicts change. */
  unreachable(): ReadonlySet<string> {
    return this.liveness.unreachable();
  }

  /** Every probed peer with its verdict. */
  status(): VtepPeerStatus[] {
    return this.liveness.status();
  }

  /** Stops probing and closes the socket. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.closeSocket();
  }

  private tick(): void {
    const t = this.target;
    // Without a socket nothing was sent, so nothing is judged: our own trouble is not the peers'.
    if (!t || !this.ensureSocket(t)) return;
    const sock = this.open!.socket;
    const changes: VtepChange[] = [];
    // Answers first: the last round's echoes are judged below, and an answer waiting here counts.
    for (const a of sock.drain()) {
      const peer = this.byAddress.get(a.from);
      const change = peer === undefined ? null : this.liveness.answered(peer, a.seq);
      if (change) changes.push(change);
    }
    const round = this.liveness.tick(this.now());
    this.report([...changes, ...round.changes]);
    for (const p of round.probes) {
      const address = this.byNode.get(p.peer);
      // An echo the kernel refuses (no route, full buffer) goes unanswered: the next tick counts it.
      if (address && !sock.send(address, p.seq)) this.opts.log.debug({ event: 'vtep.probe_send_failed', peer: p.peer, address });
    }
  }

  /** The socket for `t`, made (again) when missing or when the sandbox was re-made; false when it cannot be. */
  private ensureSocket(t: VtepProbeTarget): boolean {
    try {
      const identity = netnsIdentity(t.netns);
      if (this.open?.identity === identity) return true;
      this.closeSocket();
      this.open = { socket: EchoSocket.open(t.netns, t.source), netns: t.netns, source: t.source, identity };
      this.lastError = '';
      this.opts.log.info({ event: 'vtep.probing', netns: t.netns, source: t.source, peers: t.peers.length, intervalMs: this.opts.intervalMs });
      return true;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.lastError) this.opts.log.warn({ event: 'vtep.probe_socket_failed', error: message, hint: 'peers are judged by their lease alone until probes can be sent' });
      this.lastError = message;
      return false;
    }
  }

  private report(changes: readonly VtepChange[]): void {
    if (changes.length === 0) return;
    for (const c of changes) {
      const address = this.byNode.get(c.peer);
      if (c.state === 'unreachable') {
        const error = `${c.peer} (${address ?? '?'}) missed ${c.misses} echo probes in a row over the overlay`;
        this.opts.log.warn({ event: 'vtep.unreachable', peer: c.peer, address, misses: c.misses, intervalMs: this.opts.intervalMs, error, hint: 'its backends leave this node\'s tables until it answers again or its lease ends' });
      } else if (c.state === 'reachable') {
        this.opts.log.info({ event: 'vtep.reachable', peer: c.peer, address });
      } else {
        this.opts.log.info({ event: 'vtep.forgotten', peer: c.peer, hint: 'no longer probed: it left the cluster (its lease ended) or has no ingress endpoint' });
      }
    }
    this.opts.onChange();
  }

  private closeSocket(): void {
    this.open?.socket.close();
    this.open = null;
  }
}
