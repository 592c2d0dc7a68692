import type { LbTable, VirtualService } from '../lb-table.js';

/** Which conntrack entries to delete: flows to a frontend whose replies come from `replySrc` (TCP: only in `state`). */
export interface ConntrackDeletion {
  protocol: 'udp' | 'tcp';
  /** TCP: only entries in this state (half-open connection attempts). */
  state?: 'SYN_SENT';
  /** The frontend address the client sent to; absent for fwmark frontends on every local address. */
  origDst?: string;
  origPortDst: number;
  replySrc: string;
  /** Absent when the flow was never NATed (it replies from the frontend's own port). */
  replyPortSrc?: number;
}

function frontendKey(svc: VirtualService): string {
  const f = svc.frontend;
  return f.kind === 'vip' ? `vip ${f.address} ${f.protocol} ${f.port}` : `mark ${f.mark} ${f.address ?? '*'} ${f.protocol} ${f.port}`;
}

function backendKey(svc: VirtualService, address: string, port: number): string {
  return `${address}:${port === 0 ? svc.frontend.port : port}`;
}

/**
 * UDP has no connection end, so a client that keeps sending keeps its conntrack entry, NATed to
 * a backend that is gone, forever (kube-proxy #19029, #139628). When a UDP backend leaves a
 * service, its entries must go; when a service gets its first selectable backend, entries that
 * were created un-NATed (replies from the VIP itself) must go too.
 */
export function staleConntrackDeletions(prev: LbTable | null, next: LbTable): ConntrackDeletion[] {
  if (!prev) return [];
  return [...udpDeletions(prev, next), ...halfOpenTcpDeletions(prev, next)];
}

/**
 * A published port's connection attempts to a backend that is gone (a dead node's task) stay in
 * conntrack as SYN_SENT for two minutes, NATed to it. A client that reuses a source port within that
 * time sends its new SYN into the old entry, to the dead backend, and times out, long after the
 * backend left the table. Established connections are left alone: those to a drained task end with it.
 */
function halfOpenTcpDeletions(prev: LbTable, next: LbTable): ConntrackDeletion[] {
  const nextByFrontend = new Map(next.services.filter((s) => s.frontend.kind === 'fwmark' && s.frontend.protocol === 'tcp').map((s) => [frontendKey(s), s]));
  const out: ConntrackDeletion[] = [];
  for (const old of prev.services) {
    const f = old.frontend;
    if (f.kind !== 'fwmark' || f.protocol !== 'tcp') continue;
    const now = nextByFrontend.get(frontendKey(old));
    const kept = new Set((now?.backends ?? []).map((b) => backendKey(now!, b.address, b.port)));
    for (const b of old.backends) {
      if (kept.has(backendKey(old, b.address, b.port))) continue;
      out.push({ protocol: 'tcp', state: 'SYN_SENT', origPortDst: f.port, replySrc: b.address, replyPortSrc: b.port === 0 ? f.port : b.port });
    }
  }
  return out;
}

/** UDP flows whose backend left, or that went un-NATed before the service had a backend. */
function udpDeletions(prev: LbTable, next: LbTable): ConntrackDeletion[] {
  // Only UDP services matter; most tables are mostly TCP, so this keeps a sync's cost small.
  const nextUdp = next.services.filter((s) => s.frontend.protocol === 'udp');
  const prevUdp = prev.services.filter((s) => s.frontend.protocol === 'udp');
  if (nextUdp.length === 0 && prevUdp.length === 0) return [];
  const nextByFrontend = new Map(nextUdp.map((s) => [frontendKey(s), s]));
  const prevKeys = new Set(prevUdp.map(frontendKey));
  const out: ConntrackDeletion[] = [];
  const seen = new Set<string>();
  const push = (d: ConntrackDeletion) => {
    const k = JSON.stringify(d);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(d);
    }
  };
  for (const old of prevUdp) {
    const f = old.frontend;
    const origDst = f.address;
    const now = nextByFrontend.get(frontendKey(old));
    const kept = new Set((now?.backends ?? []).map((b) => backendKey(now!, b.address, b.port)));
    for (const b of old.backends) {
      if (kept.has(backendKey(old, b.address, b.port))) continue;
      const port = b.port === 0 ? f.port : b.port;
      push({ protocol: 'udp', ...(origDst ? { origDst } : {}), origPortDst: f.port, replySrc: b.address, replyPortSrc: port });
    }
    const hadNone = !old.backends.some((b) => b.weight > 0);
    const hasSome = !!now && now.backends.some((b) => b.weight > 0);
    if (hadNone && hasSome && f.kind === 'vip') {
      push({ protocol: 'udp', origDst: f.address, origPortDst: f.port, replySrc: f.address, replyPortSrc: f.port });
    }
  }
  for (const svc of nextUdp) {
    // A new UDP service: entries created before it existed went un-NATed to its VIP.
    if (svc.frontend.kind !== 'vip') continue;
    if (!prevKeys.has(frontendKey(svc)) && svc.backends.some((b) => b.weight > 0)) {
      const f = svc.frontend;
      push({ protocol: 'udp', origDst: f.address, origPortDst: f.port, replySrc: f.address, replyPortSrc: f.port });
    }
  }
  return out;
}

/** The `conntrack -D` argv that deletes exactly the entries `d` describes. */
export function conntrackDeleteArgv(d: ConntrackDeletion): string[] {
  const argv = ['conntrack', '-D', '-p', d.protocol];
  if (d.state) argv.push('--state', d.state);
  if (d.origDst) argv.push('--orig-dst', d.origDst);
  argv.push('--orig-port-dst', String(d.origPortDst), '--reply-src', d.replySrc);
  if (d.replyPortSrc !== undefined) argv.push('--reply-port-src', String(d.replyPortSrc));
  return argv;
}
