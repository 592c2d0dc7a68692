/**
 * The probes' wire format: ICMP echo, as a ping socket (SOCK_DGRAM, IPPROTO_ICMP) sends and receives
 * it. The kernel fills in the identifier and checksum and hands the socket only replies that carry
 * its identifier; the payload's tag keeps anything else out all the same.
 */

const ECHO_REQUEST = 8;
const ECHO_REPLY = 0;
const HEADER = 8;
const TAG = Buffer.from('meshnet-vtep');

/** An echo request with sequence number `seq` (16 bits). */
export function echoRequest(seq: number): Buffer {
  const buf = Buffer.alloc(HEADER + TAG.length);
  buf.writeUInt8(ECHO_REQUEST, 0);
  buf.writeUInt16BE(seq & 0xffff, 6);
  TAG.copy(buf, HEADER);
  return buf;
}

/** The sequence number of a probe's echo reply, or null when `buf` is not one. */
export function echoReplySeq(buf: Buffer): number | null {
  if (buf.length !== HEADER + TAG.length || buf.readUInt8(0) !== ECHO_REPLY || buf.readUInt8(1) !== 0) return null;
  if (!buf.subarray(HEADER).equals(TAG)) return null;
  return buf.readUInt16BE(6);
}
