import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '../log/logger.js';
import { netnsIdentity } from '../sandbox/netns-switch.js';
import { echoReplySeq, echoRequest } from './vtep-echo.js';
import { VtepLiveness, type VtepChange, type VtepPeerStatus } from './vtep-liveness.js';
import { closeEchoSocket, openEchoSocket } from './vtep-socket.js';

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
  socket: Socket;
  netns: string;
  source: string;
  /** device:inode of the namespace it was made in: a re-made sandbox needs a new socket. */
  identity: string;
}

/**
 * Sends an echo to each peer's ingress-overlay address every interval and feeds the answers to
 * the liveness machine (vtep-liveness.ts decides; this only sends, listens and logs). One socket and
 * one timer for all peers, no process; an idle round is a few sendto(2) calls.
 */
export class VtepProber {
  private readonly liveness: VtepLiveness;
  private readonly now: () => number;
  private target: VtepProbeTarget | null = null;
  private targetKey = '';
  private byAddress = new Map<string, string>();
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
    if (!target || (this.open && (this.open.netns !== target.netns || this.open.source !== target.source))) this.closeSocket();
    this.report(this.liveness.setPeers((target?.peers ?? []).map((p) => p.node)));
    if (target && !this.timer) {
      this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
      this.timer.unref();
    } else if (!target && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
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
    const { probes, changes } = this.liveness.tick(this.now());
    this.report(changes);
    const sock = this.open!.socket;
    const addressOf = new Map(t.peers.map((p) => [p.node, p.address]));
    for (const p of probes) {
      const address = addressOf.get(p.peer);
      // A failed send is a probe that goes unanswered: the next tick counts it. (A ping socket ignores the port.)
      try {
        if (address) sock.send(echoRequest(p.seq), 1, address, () => undefined);
      } catch (err) {
        this.opts.log.debug({ event: 'vtep.probe_send_failed', peer: p.peer, error: (err as Error).message });
      }
    }
  }

  /** The socket for `t`, made (again) when missing or when the sandbox was re-made; false when it cannot be. */
  private ensureSocket(t: VtepProbeTarget): boolean {
    let identity: string;
    try {
      identity = netnsIdentity(t.netns);
      if (this.open?.identity === identity) return true;
      this.closeSocket();
      const fd = openEchoSocket(t.netns, t.source);
      const socket = createSocket({ type: 'udp4' });
      try {
        socket.bind({ fd });
      } catch (err) {
        closeEchoSocket(fd);
        throw err;
      }
      socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address));
      socket.on('error', (err) => {
        this.opts.log.warn({ event: 'vtep.probe_socket_failed', error: err.message });
        this.closeSocket();
      });
      this.open = { socket, netns: t.netns, source: t.source, identity };
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

  private onMessage(msg: Buffer, from: string): void {
    const seq = echoReplySeq(msg);
    const peer = this.byAddress.get(from);
    if (seq === null || peer === undefined) return;
    const change = this.liveness.answered(peer, seq);
    if (change) this.report([change]);
  }

  private report(changes: readonly VtepChange[]): void {
    if (changes.length === 0) return;
    for (const c of changes) {
      const address = this.target?.peers.find((p) => p.node === c.peer)?.address;
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
