/**
 * The netlink attribute wire format (struct nlattr: u16 length, u16 type, payload padded to 4 bytes),
 * shared by the hand-written codecs: IPVS over generic netlink and XFRM. Pure.
 */

/** One attribute as read: its type (without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits) and payload. */
export interface NlAttr {
  type: number;
  data: Buffer;
}

/** One netlink attribute, padded to 4 bytes. */
export function nlAttr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

/** The attributes of `buf` from offset `from` on; a malformed one ends the walk, and its offset is given. */
export function walkNlAttrs(buf: Buffer, from = 0): { attrs: NlAttr[]; malformedAt?: number } {
  const attrs: NlAttr[] = [];
  let at = from;
  while (at + 4 <= buf.length) {
    const len = buf.readUInt16LE(at);
    if (len < 4 || at + len > buf.length) return { attrs, malformedAt: at };
    attrs.push({ type: buf.readUInt16LE(at + 2) & 0x3fff, data: buf.subarray(at + 4, at + len) });
    at += (len + 3) & ~3;
  }
  return { attrs };
}
