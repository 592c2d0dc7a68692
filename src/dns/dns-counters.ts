/**
 * What the resolver has seen, counted where it happens (in each worker thread) and summed by the
 * service for /metrics. Plain numbers in fixed slots: counting costs one increment on the hot path.
 */
export interface DnsCounters {
  /** Messages received (UDP datagrams and TCP messages), whatever became of them. */
  queries: number;
  /** Answers sent, by the rcode in their header (index 0-15: NOERROR, FORMERR, SERVFAIL, NXDOMAIN, ...). */
  answers: number[];
  /** Messages dropped without an answer (unparseable, or beyond the error-answer rate limit). */
  dropped: number;
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

/** Counters at zero. */
export function emptyDnsCounters(): DnsCounters {
  return { queries: 0, answers: new Array<number>(16).fill(0), dropped: 0 };
}

/** Counts one answer about to be sent, by the rcode in its header. */
export function countAnswer(c: DnsCounters, wire: Uint8Array): void {
  c.answers[(wire[3] ?? 0) & 0x0f]!++;
}

/** Adds `b` into `a` (a worker's counters into the service's sum). */
export function addDnsCounters(a: DnsCounters, b: DnsCounters): DnsCounters {
  a.queries += b.queries;
  a.dropped += b.dropped;
  for (let i = 0; i < 16; i++) a.answers[i]! += b.answers[i] ?? 0;
  return a;
}

/** The mnemonic of an rcode (RFC 6895), or its number for the unassigned ones. */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}
