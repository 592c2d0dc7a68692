/**
 * The hot path of the resolver reads only the 12-byte header, the one question and an
 * optional EDNS0 OPT record, straight from the received bytes: a full decode per query
 * (dns-packet, dns2) costs several times more and is what a hostile packet would exploit.
 */

export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const TYPE_SRV = 33;
export const TYPE_OPT = 41;
export const TYPE_IXFR = 251;
export const TYPE_AXFR = 252;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_CD = 0x0010;

/** Largest message accepted at all (a query needs far less; anything bigger is dropped unread). */
export const MAX_QUERY_BYTES = 4096;
/** UDP answers never exceed this, whatever EDNS0 size a query claims. */
export const MAX_UDP_ANSWER_BYTES = 4096;
/** The EDNS0 payload size we advertise (the DNS flag day 2020 value). */
export const OUR_EDNS_SIZE = 1232;

/** Header, question and EDNS0 facts of a well-formed query. */
export interface ParsedQuery {
  id: number;
  flags: number;
  /** Lower-cased, dot-separated, no trailing dot; '' for the root. */
  qname: string;
  /** True when a label holds a '.' or a byte outside printable ASCII: never one of our names. */
  opaqueName: boolean;
  qtype: number;
  qclass: number;
  /** Offset just past the question: bytes 12..questionEnd are echoed in answers. */
  questionEnd: number;
  /** EDNS0 requestor payload size, or 0 when the query has no OPT record. */
  ednsSize: number;
  ednsVersion: number;
}

/** Why a packet cannot be answered normally: drop silently, or answer with a bare header. */
export const DROP = -1;
export type ParseRejection = typeof DROP | typeof RCODE_FORMERR | typeof RCODE_NOTIMP;

/**
 * Parses a query; returns DROP for what must get no answer (too short, too long, a response),
 * or an rcode for a bare-header error answer. Never throws and reads no byte past `msg.length`.
 */
export function parseQuery(msg: Uint8Array): ParsedQuery | ParseRejection {
  const len = msg.length;
  if (len < 12 || len > MAX_QUERY_BYTES) return DROP;
  const flags = (msg[2]! << 8) | msg[3]!;
  // Answering a response could start a loop between two resolvers (or reflect spoofed traffic).
  if (flags & FLAG_QR) return DROP;
  if (((flags >> 11) & 0xf) !== 0) return RCODE_NOTIMP;
  const qdcount = (msg[4]! << 8) | msg[5]!;
  const ancount = (msg[6]! << 8) | msg[7]!;
  const nscount = (msg[8]! << 8) | msg[9]!;
  const arcount = (msg[10]! << 8) | msg[11]!;
  if (qdcount !== 1 || ancount !== 0 || nscount !== 0 || arcount > 1) return RCODE_FORMERR;

  let pos = 12;
  let qname = '';
  let opaqueName = false;
  let nameBytes = 0;
  for (;;) {
    if (pos >= len) return RCODE_FORMERR;
    const labelLen = msg[pos]!;
    pos++;
    if (labelLen === 0) break;
    // 0xC0 is a compression pointer, 0x40/0x80 are obsolete label types: none belongs in a
    // query's only question (a pointer there can only point at the header or loop).
    if (labelLen > 63) return RCODE_FORMERR;
    nameBytes += labelLen + 1;
    if (nameBytes > 254 || pos + labelLen > len) return RCODE_FORMERR;
    if (qname.length > 0) qname += '.';
    for (let i = pos; i < pos + labelLen; i++) {
      let c = msg[i]!;
      if (c >= 65 && c <= 90) c += 32;
      else if (c === 46 || c < 33 || c > 126) opaqueName = true;
      qname += String.fromCharCode(c);
    }
    pos += labelLen;
  }
  if (pos + 4 > len) return RCODE_FORMERR;
  const qtype = (msg[pos]! << 8) | msg[pos + 1]!;
  const qclass = (msg[pos + 2]! << 8) | msg[pos + 3]!;
  pos += 4;
  const questionEnd = pos;

  let ednsSize = 0;
  let ednsVersion = 0;
  if (arcount === 1) {
    // Only an OPT record (root owner, type 41) is accepted in the additional section.
    if (pos + 11 > len || msg[pos] !== 0) return RCODE_FORMERR;
    const type = (msg[pos + 1]! << 8) | msg[pos + 2]!;
    if (type !== TYPE_OPT) return RCODE_FORMERR;
    ednsSize = (msg[pos + 3]! << 8) | msg[pos + 4]!;
    ednsVersion = msg[pos + 6]!;
    const rdlen = (msg[pos + 9]! << 8) | msg[pos + 10]!;
    pos += 11 + rdlen;
    if (pos > len) return RCODE_FORMERR;
    if (ednsSize < 512) ednsSize = 512;
  }
  if (pos !== len) return RCODE_FORMERR;
  return { id: (msg[0]! << 8) | msg[1]!, flags, qname, opaqueName, qtype, qclass, questionEnd, ednsSize, ednsVersion };
}

/** A header-only answer (no question, no records): never longer than the query it answers. */
export function bareHeaderAnswer(query: Uint8Array, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  out[0] = query[0]!;
  out[1] = query[1]!;
  // Keep the query's opcode and RD; set QR; everything else zero.
  const flags = FLAG_QR | (((query[2]! << 8) | query[3]!) & (0x7800 | FLAG_RD)) | (rcode & 0xf);
  out.writeUInt16BE(flags, 2);
  return out;
}

/** Header + echoed question (+ OPT when the query had one) with `rcode`, for REFUSED/SERVFAIL/BADVERS. */
export function questionOnlyAnswer(query: Uint8Array, q: ParsedQuery, rcode: number): Buffer {
  const qlen = q.questionEnd - 12;
  const withOpt = q.ednsSize > 0;
  const out = Buffer.alloc(12 + qlen + (withOpt ? 11 : 0));
  out[0] = query[0]!;
  out[1] = query[1]!;
  out.writeUInt16BE(FLAG_QR | FLAG_RA | (q.flags & (FLAG_RD | FLAG_CD)) | (rcode & 0xf), 2);
  out.writeUInt16BE(1, 4);
  out.set(query.subarray(12, q.questionEnd), 12);
  if (withOpt) {
    out.writeUInt16BE(1, 10);
    writeOpt(out, 12 + qlen, rcode >> 4);
  }
  return out;
}

/** Writes our OPT record (11 bytes) at `at`; `extendedRcode` is the rcode's upper 8 bits. */
export function writeOpt(out: Buffer, at: number, extendedRcode: number): void {
  out[at] = 0;
  out.writeUInt16BE(TYPE_OPT, at + 1);
  out.writeUInt16BE(OUR_EDNS_SIZE, at + 3);
  out[at + 5] = extendedRcode & 0xff;
  out[at + 6] = 0; // version 0
  out.writeUInt16BE(0, at + 7); // no DO: we serve no signatures
  out.writeUInt16BE(0, at + 9);
}

/** Uncompressed wire form of a dotted name (used for PTR and SRV targets). */
export function encodeName(name: string): Buffer {
  const labels = name === '' ? [] : name.split('.');
  const parts: number[] = [];
  for (const label of labels) {
    parts.push(label.length);
    for (let i = 0; i < label.length; i++) parts.push(label.charCodeAt(i) & 0xff);
  }
  parts.push(0);
  return Buffer.from(parts);
}

/** Four bytes of an IPv4 literal (validated earlier by the name view schema). */
export function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map((p) => Number(p) & 0xff));
}

/** The in-addr.arpa name of an IPv4 address, as a PTR query asks it (lower case, no trailing dot). */
export function reverseName(ip: string): string {
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/**
 * One resource record whose owner is the question name, written as a compression pointer to
 * offset 12 (where the echoed question starts): 2 bytes instead of the whole name, which is
 * what dns-packet would write since it never compresses.
 */
export function recordAtQuestion(type: number, ttl: number, rdata: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + rdata.length);
  out.writeUInt16BE(0xc00c, 0);
  out.writeUInt16BE(type, 2);
  out.writeUInt16BE(CLASS_IN, 4);
  out.writeUInt32BE(ttl >>> 0, 6);
  out.writeUInt16BE(rdata.length, 10);
  out.set(rdata, 12);
  return out;
}

/** A resource record with an explicit owner name (SRV glue in the additional section). */
export function recordNamed(owner: string, type: number, ttl: number, rdata: Uint8Array): Buffer {
  const name = encodeName(owner);
  const out = Buffer.alloc(name.length + 10 + rdata.length);
  out.set(name, 0);
  let at = name.length;
  out.writeUInt16BE(type, at);
  out.writeUInt16BE(CLASS_IN, at + 2);
  out.writeUInt32BE(ttl >>> 0, at + 4);
  out.writeUInt16BE(rdata.length, at + 8);
  at += 10;
  out.set(rdata, at);
  return out;
}
