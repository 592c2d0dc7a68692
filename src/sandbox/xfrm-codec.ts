/**
 * Pure encoding and decoding of the kernel's XFRM netlink messages (include/uapi/linux/xfrm.h),
 * for the ESP transport-mode states and policies of encrypted overlays. Only payloads live here:
 * the netlink header is added by the socket layer. No I/O, so every byte can be tested by hand.
 *
 * Hand-written because npm has no maintained XFRM library (the `netlink` package meshnet uses
 * for rtnetlink covers links, routes, neighbours and genl, not NETLINK_XFRM), and the subset
 * meshnet needs is four fixed structs and three attributes.
 *
 * Byte order: integers are host order (little-endian on x86_64 and arm64, what meshnet targets);
 * addresses, SPIs and ports are network order.
 */

import { nlAttr, walkNlAttrs } from './netlink-attrs.js';

/** The netlink protocol number of XFRM (linux/netlink.h NETLINK_XFRM). */
export const NETLINK_XFRM = 6;

/** XFRM message types. */
export const XfrmMsg = {
  NEWSA: 0x10,
  DELSA: 0x11,
  GETSA: 0x12,
  NEWPOLICY: 0x13,
  DELPOLICY: 0x14,
  GETPOLICY: 0x15,
  UPDPOLICY: 0x19,
  UPDSA: 0x1a,
} as const;

/** XFRMA_* attribute types meshnet writes or reads. */
export const XfrmAttr = { TMPL: 5, ALG_AEAD: 18, MARK: 21 } as const;

/** Netlink flags: create, exclusive, dump. */
export const NLM_F_CREATE = 0x400;
export const NLM_F_EXCL = 0x200;
export const NLM_F_DUMP = 0x300;

const AF_INET = 2;
export const IPPROTO_ESP = 50;
export const IPPROTO_UDP = 17;
const XFRM_MODE_TRANSPORT = 0;
const XFRM_POLICY_OUT = 1;
const XFRM_INF = 0xffffffffffffffffn;

/** The AEAD meshnet uses: AES-GCM as ESP carries it (RFC 4106), 128-bit key + 32-bit salt, 128-bit ICV. */
export const ESP_AEAD = 'rfc4106(gcm(aes))';
export const ESP_AEAD_KEY_BYTES = 20;
export const ESP_ICV_BITS = 128;

const SELECTOR_LEN = 56;
const USERSA_INFO_LEN = 224;
const USERSA_ID_LEN = 24;
const USERPOLICY_INFO_LEN = 168;
const USERPOLICY_ID_LEN = 64;
const USER_TMPL_LEN = 64;
const ALGO_NAME_LEN = 64;

/** A transport-mode ESP state (SA): one direction between two underlay addresses. */
export interface XfrmSa {
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  /** 20 bytes: AES-128 key then the 4-byte salt. */
  key: Buffer;
  replayWindow: number;
}

/** An outbound policy: UDP to `dport` from src to dst, carrying `mark`, goes through ESP with SA `spi`. */
export interface XfrmOutPolicy {
  src: string;
  dst: string;
  dport: number;
  mark: number;
  priority: number;
  /** The SA the template pins: switching it switches the outbound key. */
  spi: number;
  reqid: number;
}

/** What a dump of SAs says of one (only what meshnet compares). */
export interface XfrmSaView {
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  proto: number;
  mode: number;
  aead?: { name: string; key: Buffer; icvBits: number };
}

/** What a dump of policies says of one. */
export interface XfrmPolicyView {
  src: string;
  dst: string;
  srcPrefix: number;
  dstPrefix: number;
  proto: number;
  dport: number;
  dir: number;
  priority: number;
  mark?: { value: number; mask: number };
  tmpl?: { src: string; dst: string; spi: number; reqid: number; proto: number; mode: number };
}

function ipv4(buf: Buffer, offset: number, ip: string): void {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  parts.forEach((p, i) => buf.writeUInt8(p, offset + i));
}

function readIpv4(buf: Buffer, offset: number): string {
  return [0, 1, 2, 3].map((i) => buf.readUInt8(offset + i)).join('.');
}

/** struct xfrm_selector: UDP (or any) from src/32 to dst/32, optionally to one destination port. */
function selector(buf: Buffer, at: number, s: { src: string; dst: string; proto: number; dport: number }): void {
  ipv4(buf, at, s.dst);
  ipv4(buf, at + 16, s.src);
  buf.writeUInt16BE(s.dport, at + 32);
  buf.writeUInt16BE(s.dport ? 0xffff : 0, at + 34);
  buf.writeUInt16LE(AF_INET, at + 40);
  buf.writeUInt8(32, at + 42);
  buf.writeUInt8(32, at + 43);
  buf.writeUInt8(s.proto, at + 44);
}

/** struct xfrm_lifetime_cfg with no byte or packet limit and no expiry (iproute2's defaults). */
function unlimited(buf: Buffer, at: number): void {
  for (let i = 0; i < 4; i++) buf.writeBigUInt64LE(XFRM_INF, at + i * 8);
}

/** One netlink attribute, padded to 4 bytes. */
export const attr = nlAttr;

/** Attributes after a fixed struct, by type (a malformed tail is ignored: the kernel wrote it). */
export function parseAttrs(buf: Buffer, from: number): Map<number, Buffer> {
  return new Map(walkNlAttrs(buf, from).attrs.map((a) => [a.type, a.data] as const));
}

/** NEWSA / UPDSA payload: xfrm_usersa_info + XFRMA_ALG_AEAD. */
export function encodeSa(sa: XfrmSa): Buffer {
  if (sa.key.length !== ESP_AEAD_KEY_BYTES) throw new Error(`an ESP key is ${ESP_AEAD_KEY_BYTES} bytes (AES-128 + salt), got ${sa.key.length}`);
  const info = Buffer.alloc(USERSA_INFO_LEN);
  // The selector of a transport-mode SA may stay empty: the policy picks the traffic.
  info.writeUInt16LE(AF_INET, 40);
  ipv4(info, SELECTOR_LEN, sa.dst); // id.daddr
  info.writeUInt32BE(sa.spi >>> 0, SELECTOR_LEN + 16); // id.spi
  info.writeUInt8(IPPROTO_ESP, SELECTOR_LEN + 20); // id.proto
  ipv4(info, 80, sa.src); // saddr
  unlimited(info, 96); // lft: soft/hard byte and packet limits
  info.writeUInt32LE(sa.reqid, 208);
  info.writeUInt16LE(AF_INET, 212);
  info.writeUInt8(XFRM_MODE_TRANSPORT, 214);
  info.writeUInt8(sa.replayWindow, 215);
  const alg = Buffer.alloc(ALGO_NAME_LEN + 8 + sa.key.length);
  alg.write(ESP_AEAD, 0, 'latin1');
  alg.writeUInt32LE(sa.key.length * 8, ALGO_NAME_LEN);
  alg.writeUInt32LE(ESP_ICV_BITS, ALGO_NAME_LEN + 4);
  sa.key.copy(alg, ALGO_NAME_LEN + 8);
  return Buffer.concat([info, attr(XfrmAttr.ALG_AEAD, alg)]);
}

/** DELSA / GETSA payload: xfrm_usersa_id. */
export function encodeSaId(id: { dst: string; spi: number }): Buffer {
  const b = Buffer.alloc(USERSA_ID_LEN);
  ipv4(b, 0, id.dst);
  b.writeUInt32BE(id.spi >>> 0, 16);
  b.writeUInt16LE(AF_INET, 20);
  b.writeUInt8(IPPROTO_ESP, 22);
  return b;
}

/** One SA from a dump reply (xfrm_usersa_info + attributes); undefined for other families. */
export function decodeSa(data: Buffer): XfrmSaView | undefined {
  if (data.length < USERSA_INFO_LEN || data.readUInt16LE(212) !== AF_INET) return undefined;
  const view: XfrmSaView = {
    dst: readIpv4(data, SELECTOR_LEN),
    spi: data.readUInt32BE(SELECTOR_LEN + 16),
    proto: data.readUInt8(SELECTOR_LEN + 20),
    src: readIpv4(data, 80),
    reqid: data.readUInt32LE(208),
    mode: data.readUInt8(214),
  };
  const alg = parseAttrs(data, USERSA_INFO_LEN).get(XfrmAttr.ALG_AEAD);
  if (alg && alg.length >= ALGO_NAME_LEN + 8) {
    const nameEnd = alg.indexOf(0);
    const keyBytes = alg.readUInt32LE(ALGO_NAME_LEN) / 8;
    view.aead = {
      name: alg.toString('latin1', 0, nameEnd < 0 || nameEnd > ALGO_NAME_LEN ? ALGO_NAME_LEN : nameEnd),
      icvBits: alg.readUInt32LE(ALGO_NAME_LEN + 4),
      key: Buffer.from(alg.subarray(ALGO_NAME_LEN + 8, ALGO_NAME_LEN + 8 + keyBytes)),
    };
  }
  return view;
}

/** NEWPOLICY / UPDPOLICY payload: xfrm_userpolicy_info (out) + XFRMA_TMPL + XFRMA_MARK. */
export function encodeOutPolicy(p: XfrmOutPolicy): Buffer {
  const info = Buffer.alloc(USERPOLICY_INFO_LEN);
  selector(info, 0, { src: p.src, dst: p.dst, proto: IPPROTO_UDP, dport: p.dport });
  unlimited(info, SELECTOR_LEN);
  info.writeUInt32LE(p.priority, 152);
  info.writeUInt8(XFRM_POLICY_OUT, 160);
  const tmpl = Buffer.alloc(USER_TMPL_LEN);
  ipv4(tmpl, 0, p.dst); // id.daddr
  tmpl.writeUInt32BE(p.spi >>> 0, 16); // id.spi: pins the SA
  tmpl.writeUInt8(IPPROTO_ESP, 20);
  tmpl.writeUInt16LE(AF_INET, 24);
  ipv4(tmpl, 28, p.src);
  tmpl.writeUInt32LE(p.reqid, 44);
  tmpl.writeUInt8(XFRM_MODE_TRANSPORT, 48);
  // Any algorithm the SA has (iproute2 writes all ones too).
  tmpl.writeUInt32LE(0xffffffff, 52);
  tmpl.writeUInt32LE(0xffffffff, 56);
  tmpl.writeUInt32LE(0xffffffff, 60);
  const mark = Buffer.alloc(8);
  mark.writeUInt32LE(p.mark >>> 0, 0);
  mark.writeUInt32LE(0xffffffff, 4);
  return Buffer.concat([info, attr(XfrmAttr.TMPL, tmpl), attr(XfrmAttr.MARK, mark)]);
}

/** DELPOLICY payload: xfrm_userpolicy_id by selector and direction, + XFRMA_MARK (a marked policy is found only with it). */
export function encodePolicyId(p: { src: string; dst: string; dport: number; mark: number }): Buffer {
  const id = Buffer.alloc(USERPOLICY_ID_LEN);
  selector(id, 0, { src: p.src, dst: p.dst, proto: IPPROTO_UDP, dport: p.dport });
  id.writeUInt8(XFRM_POLICY_OUT, 60);
  const mark = Buffer.alloc(8);
  mark.writeUInt32LE(p.mark >>> 0, 0);
  mark.writeUInt32LE(0xffffffff, 4);
  return Buffer.concat([id, attr(XfrmAttr.MARK, mark)]);
}

/** One policy from a dump reply (xfrm_userpolicy_info + attributes); undefined for other families. */
export function decodePolicy(data: Buffer): XfrmPolicyView | undefined {
  if (data.length < USERPOLICY_INFO_LEN || data.readUInt16LE(40) !== AF_INET) return undefined;
  const view: XfrmPolicyView = {
    dst: readIpv4(data, 0),
    src: readIpv4(data, 16),
    dport: data.readUInt16BE(32),
    dstPrefix: data.readUInt8(42),
    srcPrefix: data.readUInt8(43),
    proto: data.readUInt8(44),
    priority: data.readUInt32LE(152),
    dir: data.readUInt8(160),
  };
  const attrs = parseAttrs(data, USERPOLICY_INFO_LEN);
  const mark = attrs.get(XfrmAttr.MARK);
  if (mark && mark.length >= 8) view.mark = { value: mark.readUInt32LE(0), mask: mark.readUInt32LE(4) };
  const t = attrs.get(XfrmAttr.TMPL);
  if (t && t.length >= USER_TMPL_LEN) {
    view.tmpl = { dst: readIpv4(t, 0), spi: t.readUInt32BE(16), proto: t.readUInt8(20), src: readIpv4(t, 28), reqid: t.readUInt32LE(44), mode: t.readUInt8(48) };
  }
  return view;
}

/** The empty payloads a dump request carries (the kernel reads no filter from them). */
export const DUMP_SA_REQUEST = Buffer.alloc(USERSA_INFO_LEN);
export const DUMP_POLICY_REQUEST = Buffer.alloc(USERPOLICY_INFO_LEN);
