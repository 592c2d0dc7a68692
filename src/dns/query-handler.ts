import { AnswerTable, NO_DATA, type PreparedAnswer } from './answer-table.js';
import {
  bareHeaderAnswer,
  CLASS_ANY,
  CLASS_IN,
  DROP,
  FLAG_AA,
  FLAG_CD,
  FLAG_QR,
  FLAG_RA,
  FLAG_RD,
  FLAG_TC,
  MAX_UDP_ANSWER_BYTES,
  parseQuery,
  questionOnlyAnswer,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  TYPE_A,
  TYPE_ANY,
  TYPE_AXFR,
  TYPE_IXFR,
  writeOpt,
  type ParsedQuery,
} from './wire.js';

export type Transport = 'udp' | 'tcp';

/** What to do with one received message. */
export type QueryOutcome =
  | { kind: 'reply'; wire: Buffer }
  | { kind: 'drop' }
  /** Not one of our names: send the query bytes upstream and relay what comes back. */
  | { kind: 'forward'; query: ParsedQuery }
  /** A malformed or unsupported message answered with a bare header (rate-limited by the server). */
  | { kind: 'error'; wire: Buffer };

const DROPPED: QueryOutcome = { kind: 'drop' };

/**
 * Decides the answer to one message (pure apart from the shuffle's randomness). Never throws:
 * malformed input is dropped or gets a header-only FORMERR/NOTIMP, which is never longer than
 * the message itself, so the resolver cannot be used to amplify traffic.
 */
export function handleQuery(table: AnswerTable, msg: Uint8Array, transport: Transport): QueryOutcome {
  const q = parseQuery(msg);
  if (typeof q === 'number') {
    if (q === DROP) return DROPPED;
    return { kind: 'error', wire: bareHeaderAnswer(msg, q) };
  }
  // EDNS versions above 0 get BADVERS (16: upper bits in OPT, lower bits 0 in the header).
  if (q.ednsVersion !== 0) return { kind: 'error', wire: questionOnlyAnswer(msg, q, 16) };
  if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return { kind: 'error', wire: questionOnlyAnswer(msg, q, RCODE_REFUSED) };
  if (q.qtype === TYPE_AXFR || q.qtype === TYPE_IXFR) return { kind: 'error', wire: questionOnlyAnswer(msg, q, RCODE_REFUSED) };

  const byType = q.opaqueName ? undefined : table.lookup(q.qname);
  if (!byType) {
    if (table.forwarding) return { kind: 'forward', query: q };
    return { kind: 'reply', wire: assemble(msg, q, NO_DATA, RCODE_NXDOMAIN, transport) };
  }
  const prepared = byType.get(q.qtype) ?? (q.qtype === TYPE_ANY ? byType.get(TYPE_A) : undefined) ?? NO_DATA;
  return { kind: 'reply', wire: assemble(msg, q, prepared, RCODE_NOERROR, transport) };
}

/** Size limit of a UDP answer: 512 bytes, or the query's EDNS0 size (capped). */
export function udpLimit(q: ParsedQuery): number {
  if (q.ednsSize === 0) return 512;
  return Math.min(q.ednsSize, MAX_UDP_ANSWER_BYTES);
}

/**
 * Writes the reply: our header, the question bytes exactly as received (so 0x20 case
 * randomisation survives), the prepared records (shuffled if asked) and our OPT record.
 * Over UDP, records that do not fit are left out (additional first) and TC is set.
 */
export function assemble(msg: Uint8Array, q: ParsedQuery, p: PreparedAnswer, rcode: number, transport: Transport): Buffer {
  const qlen = q.questionEnd - 12;
  const optLen = q.ednsSize > 0 ? 11 : 0;
  const fixed = 12 + qlen + optLen;
  const limit = transport === 'udp' ? udpLimit(q) : 65535;

  const answers = p.answers;
  let answerBytes = 0;
  for (const rr of answers) answerBytes += rr.length;
  let additionalBytes = 0;
  for (const rr of p.additional) additionalBytes += rr.length;

  let answerCount = answers.length;
  let includeAdditional = true;
  let truncated = false;
  if (fixed + answerBytes + additionalBytes > limit) {
    includeAdditional = false;
    if (fixed + answerBytes > limit) {
      truncated = true;
      // Whole records only; which ones survive depends on the shuffle below.
      const room = limit - fixed;
      answerCount = 0;
      let used = 0;
      for (const rr of answers) {
        if (used + rr.length > room) break;
        used += rr.length;
        answerCount++;
      }
      answerBytes = used;
    }
  }

  const total = fixed + answerBytes + (includeAdditional ? additionalBytes : 0);
  const out = Buffer.allocUnsafe(total);
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  const flags = FLAG_QR | FLAG_AA | FLAG_RA | (q.flags & (FLAG_RD | FLAG_CD)) | (truncated ? FLAG_TC : 0) | rcode;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = 1;
  out[6] = answerCount >> 8;
  out[7] = answerCount & 0xff;
  out[8] = 0;
  out[9] = 0;
  const arCount = (includeAdditional ? p.additional.length : 0) + (optLen ? 1 : 0);
  out[10] = arCount >> 8;
  out[11] = arCount & 0xff;
  out.set(msg.subarray(12, q.questionEnd), 12);
  let at = 12 + qlen;

  if (p.shuffle && answers.length > 1) {
    // Fisher-Yates over the record indexes, then copy the first answerCount of them.
    const order = new Array<number>(answers.length);
    for (let i = 0; i < order.length; i++) order[i] = i;
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    // Truncation counted whole records of the unshuffled list: A records share one size.
    for (let k = 0; k < answerCount; k++) {
      const rr = answers[order[k]!]!;
      out.set(rr, at);
      at += rr.length;
    }
  } else {
    for (let k = 0; k < answerCount; k++) {
      const rr = answers[k]!;
      out.set(rr, at);
      at += rr.length;
    }
  }
  if (includeAdditional) {
    for (const rr of p.additional) {
      out.set(rr, at);
      at += rr.length;
    }
  }
  if (optLen) writeOpt(out, at, 0);
  return out;
}
