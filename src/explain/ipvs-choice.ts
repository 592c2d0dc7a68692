/**
 * Pure: what an IPVS service does with a new connection, for explain's balancing hop. IPVS has no rules to trace:
 * its scheduler picks among destinations of weight above 0, each getting an equal share (rr, lc over time) or a
 * share by weight (wrr, and sh/mh whose hash tables hold each destination by weight); with none, the connection is
 * not balanced at all.
 */
import type { VirtualService } from '../vip/lb-table.js';
import { everyPortMarks } from '../vip/ipvs/every-port-marks.js';

/** The destinations a new connection may reach and their shares, and the IPVS service's name as ipvsadm shows it. */
export interface IpvsChoice {
  /** e.g. "FWM 8256 (0x2040)", "TCP 10.0.1.2:80". */
  service: string;
  candidates: { address: string; share: number }[];
}

const BY_WEIGHT = new Set(['wrr', 'sh', 'mh']);

/** Shares of new connections over `svc`'s destinations, as its IPVS scheduler spreads them. */
export function ipvsChoice(svc: VirtualService): IpvsChoice {
  const f = svc.frontend;
  let service: string;
  if (f.kind === 'fwmark') service = `FWM ${f.mark} (0x${f.mark.toString(16)})`;
  else if (f.port === 0) {
    const mark = everyPortMarks({ services: [svc] })(f.address, f.protocol);
    service = `FWM ${mark} (0x${mark.toString(16)}, every ${f.protocol} port of ${f.address})`;
  } else service = `${f.protocol.toUpperCase()} ${f.address.includes(':') ? `[${f.address}]` : f.address}:${f.port}`;
  const live = svc.backends.filter((b) => b.weight > 0);
  const byWeight = BY_WEIGHT.has(svc.scheduler);
  const total = live.reduce((a, b) => a + (byWeight ? b.weight : 1), 0);
  return { service, candidates: live.map((b) => ({ address: b.address, share: (byWeight ? b.weight : 1) / total })) };
}
