/**
 * Pure encoding and decoding of the kernel's IPVS generic-netlink messages
 * (include/uapi/linux/ip_vs.h). Only attribute payloads live here: the netlink and genl
 * headers are added by the socket layer. No I/O, so every byte can be tested by hand.
 *
 * Byte order: attribute headers and plain integers are host order (little-endian on every
 * platform meshnet targets: x86_64, arm64); ports and IPv4 netmasks are network order.
 */

import { nlAttr, walkNlAttrs, type NlAttr } from '../../sandbox/netlink-attrs.js';

export const IPVS_GENL_NAME = 'IPVS';
export const IPVS_GENL_VERSION = 1;

/** Generic-netlink commands of the IPVS family (enum in ip_vs.h, starting at IPVS_CMD_UNSPEC = 0). */
export const IpvsCmd = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  FLUSH: 17,
} as const;

/** First-level attributes (IPVS_CMD_ATTR_*). */
export const CmdAttr = { SERVICE: 1, DEST: 2, DAEMON: 3, TIMEOUT_TCP: 4, TIMEOUT_TCP_FIN: 5, TIMEOUT_UDP: 6 } as const;

/** Attributes nested in CmdAttr.SERVICE (IPVS_SVC_ATTR_*). */
export const SvcAttr = {
  AF: 1,
  PROTOCOL: 2,
  ADDR: 3,
  PORT: 4,
  FWMARK: 5,
  SCHED_NAME: 6,
  FLAGS: 7,
  TIMEOUT: 8,
  NETMASK: 9,
  STATS: 10,
  PE_NAME: 11,
  STATS64: 12,
} as const;

/** Attributes nested in CmdAttr.DEST (IPVS_DEST_ATTR_*). */
export const DestAttr = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  PERSIST_CONNS: 9,
  STATS: 10,
  ADDR_FAMILY: 11,
  STATS64: 12,
} as const;

/** IP_VS_SVC_F_PERSISTENT: the only service flag meshnet sets. */
export const SVC_F_PERSISTENT = 0x0001;
/** IP_VS_SVC_F_HASHED: kernel-internal; masked out of what we compare. */
export const SVC_F_HASHED = 0x0002;

/** Netlink message flags used for dumps (NLM_F_ROOT | NLM_F_MATCH). */
export const NLM_F_DUMP = 0x300;

const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO = { tcp: 6, udp: 17, sctp: 132 } as const;
const FWD = { masq: 0, local: 1, tunnel: 2, route: 3 } as const;
/** IP_VS_SCHEDNAME_MAXLEN and IP_VS_PENAME_MAXLEN include the NUL. */
const NAME_MAXLEN = 16;

export type IpvsFamily = 'inet' | 'inet6';
export type IpvsProtocol = keyof typeof IPPROTO;
/** masq = NAT (0), local (1), tunnel = IPIP (2), route = direct routing (3). */
export type IpvsForward = keyof typeof FWD;

/** How the kernel names a virtual service: by address/protocol/port, or by firewall mark. */
export type IpvsServiceKey =
  | { kind: 'vip'; family: IpvsFamily; protocol: IpvsProtocol; address: string; port: number }
  | { kind: 'fwmark'; family: IpvsFamily; fwmark: number };

export interface IpvsService {
  key: IpvsServiceKey;
  /** Scheduler module name: rr, wrr, lc, sh, mh, ... */
  scheduler: string;
  /** IP_VS_SVC_F_* bits (HASHED never included). */
  flags: number;
  /** Persistence timeout in seconds (meaningful with SVC_F_PERSISTENT). */
  timeout: number;
  /** Persistence granularity as a prefix length (32 / 128 = per client address). */
  netmaskPrefix: number;
  /** Persistence engine, e.g. "sip"; absent when none. */
  peName?: string;
}

export interface IpvsDestKey {
  family: IpvsFamily;
  address: string;
  port: number;
}

export interface IpvsDest extends IpvsDestKey {
  forward: IpvsForward;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
}

/** A destination as the kernel reports it, with its connection counters. */
export interface IpvsDestStatus extends IpvsDest {
  activeConns: number;
  inactiveConns: number;
  persistConns: number;
}

/** Seconds; 0 in a SET_CONFIG means "leave unchanged". */
export interface IpvsTimeouts {
  tcp: number;
  tcpFin: number;
  udp: number;
}

/** Every request meshnet sends, as data. */
export type IpvsRequest =
  | { op: 'newService'; service: IpvsService }
  | { op: 'setService'; service: IpvsService }
  | { op: 'delService'; key: IpvsServiceKey }
  | { op: 'getService'; key: IpvsServiceKey }
  | { op: 'dumpServices' }
  | { op: 'newDest'; service: IpvsServiceKey; dest: IpvsDest }
  | { op: 'setDest'; service: IpvsServiceKey; dest: IpvsDest }
  | { op: 'delDest'; service: IpvsServiceKey; dest: IpvsDestKey }
  | { op: 'dumpDests'; service: IpvsServiceKey }
  | { op: 'getConfig' }
  | { op: 'setConfig'; timeouts: IpvsTimeouts }
  | { op: 'flush' };

/** A request ready for the genl socket: command, extra netlink flags, attribute payload. */
export interface EncodedIpvsRequest {
  cmd: number;
  flags: number;
  payload: Buffer;
}

/** Thrown for input the kernel would reject or that cannot be represented on the wire. */
export class IpvsCodecError extends Error {
  readonly code = 'IPVS_CODEC';
  constructor(message: string) {
    super(message);
    this.name = 'IpvsCodecError';
  }
}

// ---------------------------------------------------------------------------------------
// Attribute primitives

const attr = nlAttr;

function u16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return attr(type, b);
}

function be16(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return attr(type, b);
}

function u32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
}

function str(type: number, v: string): Buffer {
  return attr(type, Buffer.from(`${v}\0`, 'latin1'));
}

/** Split an attribute stream; NLA_F_NESTED / NLA_F_NET_BYTEORDER bits are ignored. */
function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const a of iterAttrs(buf)) out.set(a.type, a.data);
  return out;
}

function iterAttrs(buf: Buffer): NlAttr[] {
  const { attrs, malformedAt } = walkNlAttrs(buf);
  if (malformedAt !== undefined) {
    throw new IpvsCodecError(`malformed netlink attribute at offset ${malformedAt} (length ${buf.readUInt16LE(malformedAt)}, buffer ${buf.length})`);
  }
  return attrs;
}

function need(m: Map<number, Buffer>, type: number, what: string): Buffer {
  const v = m.get(type);
  if (!v) throw new IpvsCodecError(`IPVS message lacks ${what} (attribute ${type})`);
  return v;
}

function readU16(b: Buffer, what: string): number {
  if (b.length < 2) throw new IpvsCodecError(`${what}: expected 2 bytes, got ${b.length}`);
  return b.readUInt16LE(0);
}

function readBe16(b: Buffer, what: string): number {
  if (b.length < 2) throw new IpvsCodecError(`${what}: expected 2 bytes, got ${b.length}`);
  return b.readUInt16BE(0);
}

function readU32(b: Buffer, what: string): number {
  if (b.length < 4) throw new IpvsCodecError(`${what}: expected 4 bytes, got ${b.length}`);
  return b.readUInt32LE(0);
}

function readStr(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1');
}

// ---------------------------------------------------------------------------------------
// Addresses

function familyNumber(f: IpvsFamily): number {
  return f === 'inet' ? AF_INET : AF_INET6;
}

function familyName(n: number): IpvsFamily {
  if (n === AF_INET) return 'inet';
  if (n === AF_INET6) return 'inet6';
  throw new IpvsCodecError(`unsupported address family ${n} in IPVS message`);
}

function parseIpv4(s: string): Buffer | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseIpv6(s: string): Buffer | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** RFC 5952 text form: lowercase, longest run of two or more zero groups as "::". */
function formatIpv6(b: Buffer): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The 16-byte union nf_inet_addr: an IPv4 address fills the first 4 bytes. */
export function encodeInetAddr(family: IpvsFamily, address: string): Buffer {
  const out = Buffer.alloc(16);
  const raw = family === 'inet' ? parseIpv4(address) : parseIpv6(address);
  if (!raw) throw new IpvsCodecError(`"${address}" is not an ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
  raw.copy(out);
  return out;
}

/** Text form of a union nf_inet_addr for the given family. */
export function decodeInetAddr(family: IpvsFamily, b: Buffer): string {
  if (family === 'inet') {
    if (b.length < 4) throw new IpvsCodecError(`IPv4 address attribute has ${b.length} bytes`);
    return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  }
  if (b.length < 16) throw new IpvsCodecError(`IPv6 address attribute has ${b.length} bytes`);
  return formatIpv6(b.subarray(0, 16));
}

/** Canonical text of an address, so keys built from user input compare equal to kernel replies. */
export function canonicalAddress(family: IpvsFamily, address: string): string {
  return decodeInetAddr(family, encodeInetAddr(family, address));
}

// ---------------------------------------------------------------------------------------
// Validation

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new IpvsCodecError(`${what} ${port} is not a port (0-65535)`);
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new IpvsCodecError(`${what} ${v} is not an unsigned 32-bit integer`);
}

function checkName(v: string, what: string): void {
  if (!/^[a-z0-9_]+$/.test(v) || v.length >= NAME_MAXLEN) {
    throw new IpvsCodecError(`${what} "${v}" must be 1-${NAME_MAXLEN - 1} characters of [a-z0-9_]`);
  }
}

// ---------------------------------------------------------------------------------------
// Services

function encodeServiceKeyAttrs(key: IpvsServiceKey): Buffer[] {
  const parts = [u16(SvcAttr.AF, familyNumber(key.family))];
  if (key.kind === 'fwmark') {
    checkU32(key.fwmark, 'fwmark');
    if (key.fwmark === 0) throw new IpvsCodecError('fwmark 0 cannot name an IPVS service: use a mark of 1 or more');
    parts.push(u32(SvcAttr.FWMARK, key.fwmark));
  } else {
    checkPort(key.port, 'service port');
    const proto = IPPROTO[key.protocol];
    if (proto === undefined) throw new IpvsCodecError(`protocol "${String(key.protocol)}" is not tcp, udp or sctp`);
    parts.push(u16(SvcAttr.PROTOCOL, proto), attr(SvcAttr.ADDR, encodeInetAddr(key.family, key.address)), be16(SvcAttr.PORT, key.port));
  }
  return parts;
}

function encodeNetmask(family: IpvsFamily, prefix: number): Buffer {
  const max = family === 'inet' ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < (family === 'inet' ? 0 : 1) || prefix > max) {
    throw new IpvsCodecError(`persistence netmask /${prefix} is out of range for ${family}`);
  }
  const b = Buffer.alloc(4);
  // The kernel reads a __be32: a real mask for IPv4, but a raw prefix length (host order) for IPv6.
  if (family === 'inet') b.writeUInt32BE(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
  else b.writeUInt32LE(prefix);
  return attr(SvcAttr.NETMASK, b);
}

function decodeNetmask(family: IpvsFamily, b: Buffer): number {
  if (family === 'inet6') return readU32(b, 'netmask');
  let mask = b.length >= 4 ? b.readUInt32BE(0) : 0;
  let n = 0;
  while (mask & 0x80000000) {
    n++;
    mask = (mask << 1) >>> 0;
  }
  return n;
}

function encodeServiceFull(s: IpvsService): Buffer {
  checkName(s.scheduler, 'scheduler');
  checkU32(s.flags, 'service flags');
  checkU32(s.timeout, 'persistence timeout');
  const flags = Buffer.alloc(8);
  flags.writeUInt32LE(s.flags & ~SVC_F_HASHED, 0);
  flags.writeUInt32LE(0xffffffff, 4); // mask: every flag is set to exactly the given value
  const parts = [
    ...encodeServiceKeyAttrs(s.key),
    str(SvcAttr.SCHED_NAME, s.scheduler),
    attr(SvcAttr.FLAGS, flags),
    u32(SvcAttr.TIMEOUT, s.timeout),
    encodeNetmask(s.key.family, s.netmaskPrefix),
  ];
  if (s.peName !== undefined) {
    checkName(s.peName, 'persistence engine');
    parts.push(str(SvcAttr.PE_NAME, s.peName));
  }
  return attr(CmdAttr.SERVICE, Buffer.concat(parts));
}

function encodeServiceKey(key: IpvsServiceKey): Buffer {
  return attr(CmdAttr.SERVICE, Buffer.concat(encodeServiceKeyAttrs(key)));
}

function decodeServiceKey(m: Map<number, Buffer>): IpvsServiceKey {
  const family = familyName(readU16(need(m, SvcAttr.AF, 'the address family'), 'af'));
  const fw = m.get(SvcAttr.FWMARK);
  if (fw) return { kind: 'fwmark', family, fwmark: readU32(fw, 'fwmark') };
  const protoNum = readU16(need(m, SvcAttr.PROTOCOL, 'the protocol'), 'protocol');
  const protocol = (Object.keys(IPPROTO) as IpvsProtocol[]).find((p) => IPPROTO[p] === protoNum);
  if (!protocol) throw new IpvsCodecError(`unsupported IP protocol ${protoNum} in IPVS service`);
  return {
    kind: 'vip',
    family,
    protocol,
    address: decodeInetAddr(family, need(m, SvcAttr.ADDR, 'the address')),
    port: readBe16(need(m, SvcAttr.PORT, 'the port'), 'port'),
  };
}

/** Decode the attributes nested in a CmdAttr.SERVICE (from a request or a GET_SERVICE reply). */
export function decodeServiceAttrs(nested: Buffer): IpvsService {
  const m = parseAttrs(nested);
  const key = decodeServiceKey(m);
  const flagsRaw = need(m, SvcAttr.FLAGS, 'the flags');
  if (flagsRaw.length < 8) throw new IpvsCodecError(`IPVS service flags attribute has ${flagsRaw.length} bytes, expected 8`);
  const svc: IpvsService = {
    key,
    scheduler: readStr(need(m, SvcAttr.SCHED_NAME, 'the scheduler')),
    flags: flagsRaw.readUInt32LE(0) & flagsRaw.readUInt32LE(4) & ~SVC_F_HASHED,
    timeout: readU32(need(m, SvcAttr.TIMEOUT, 'the timeout'), 'timeout'),
    netmaskPrefix: decodeNetmask(key.family, need(m, SvcAttr.NETMASK, 'the netmask')),
  };
  const pe = m.get(SvcAttr.PE_NAME);
  if (pe) svc.peName = readStr(pe);
  return svc;
}

// ---------------------------------------------------------------------------------------
// Destinations

function encodeDestKeyAttrs(d: IpvsDestKey): Buffer[] {
  checkPort(d.port, 'destination port');
  return [attr(DestAttr.ADDR, encodeInetAddr(d.family, d.address)), be16(DestAttr.PORT, d.port)];
}

function encodeDestFull(d: IpvsDest): Buffer {
  const fwd = FWD[d.forward];
  if (fwd === undefined) throw new IpvsCodecError(`forwarding method "${String(d.forward)}" is not masq, local, tunnel or route`);
  // The kernel stores the weight in an int and rejects negatives.
  if (!Number.isInteger(d.weight) || d.weight < 0 || d.weight > 0x7fffffff) throw new IpvsCodecError(`weight ${d.weight} must be 0-2147483647`);
  checkU32(d.upperThreshold, 'upper threshold');
  checkU32(d.lowerThreshold, 'lower threshold');
  return attr(
    CmdAttr.DEST,
    Buffer.concat([
      ...encodeDestKeyAttrs(d),
      u32(DestAttr.FWD_METHOD, fwd),
      u32(DestAttr.WEIGHT, d.weight),
      u32(DestAttr.U_THRESH, d.upperThreshold),
      u32(DestAttr.L_THRESH, d.lowerThreshold),
      u16(DestAttr.ADDR_FAMILY, familyNumber(d.family)),
    ]),
  );
}

function encodeDestKey(d: IpvsDestKey): Buffer {
  return attr(CmdAttr.DEST, Buffer.concat([...encodeDestKeyAttrs(d), u16(DestAttr.ADDR_FAMILY, familyNumber(d.family))]));
}

function decodeDestKey(m: Map<number, Buffer>, fallbackFamily: IpvsFamily): IpvsDestKey {
  const af = m.get(DestAttr.ADDR_FAMILY);
  const family = af ? familyName(readU16(af, 'dest af')) : fallbackFamily;
  return {
    family,
    address: decodeInetAddr(family, need(m, DestAttr.ADDR, 'the destination address')),
    port: readBe16(need(m, DestAttr.PORT, 'the destination port'), 'dest port'),
  };
}

function decodeDestFull(m: Map<number, Buffer>, fallbackFamily: IpvsFamily): IpvsDest {
  const fwdNum = readU32(need(m, DestAttr.FWD_METHOD, 'the forwarding method'), 'fwd') & 0x7;
  const forward = (Object.keys(FWD) as IpvsForward[]).find((k) => FWD[k] === fwdNum);
  if (!forward) throw new IpvsCodecError(`unknown IPVS forwarding method ${fwdNum}`);
  return {
    ...decodeDestKey(m, fallbackFamily),
    forward,
    weight: readU32(need(m, DestAttr.WEIGHT, 'the weight'), 'weight'),
    upperThreshold: readU32(need(m, DestAttr.U_THRESH, 'the upper threshold'), 'u_thresh'),
    lowerThreshold: readU32(need(m, DestAttr.L_THRESH, 'the lower threshold'), 'l_thresh'),
  };
}

/** Decode the attributes nested in a CmdAttr.DEST of a GET_DEST reply (with counters). */
export function decodeDestAttrs(nested: Buffer, serviceFamily: IpvsFamily = 'inet'): IpvsDestStatus {
  const m = parseAttrs(nested);
  const counter = (t: number) => {
    const b = m.get(t);
    return b ? readU32(b, 'counter') : 0;
  };
  return {
    ...decodeDestFull(m, serviceFamily),
    activeConns: counter(DestAttr.ACTIVE_CONNS),
    inactiveConns: counter(DestAttr.INACT_CONNS),
    persistConns: counter(DestAttr.PERSIST_CONNS),
  };
}

// ---------------------------------------------------------------------------------------
// Requests

function encodeTimeouts(t: IpvsTimeouts): Buffer {
  checkU32(t.tcp, 'tcp timeout');
  checkU32(t.tcpFin, 'tcp_fin timeout');
  checkU32(t.udp, 'udp timeout');
  return Buffer.concat([u32(CmdAttr.TIMEOUT_TCP, t.tcp), u32(CmdAttr.TIMEOUT_TCP_FIN, t.tcpFin), u32(CmdAttr.TIMEOUT_UDP, t.udp)]);
}

/** Encode one request as genl command, netlink flags and attribute payload. */
export function encodeIpvsRequest(r: IpvsRequest): EncodedIpvsRequest {
  const plain = (cmd: number, ...parts: Buffer[]): EncodedIpvsRequest => ({ cmd, flags: 0, payload: Buffer.concat(parts) });
  switch (r.op) {
    case 'newService':
      return plain(IpvsCmd.NEW_SERVICE, encodeServiceFull(r.service));
    case 'setService':
      return plain(IpvsCmd.SET_SERVICE, encodeServiceFull(r.service));
    case 'delService':
      return plain(IpvsCmd.DEL_SERVICE, encodeServiceKey(r.key));
    case 'getService':
      return plain(IpvsCmd.GET_SERVICE, encodeServiceKey(r.key));
    case 'dumpServices':
      return { cmd: IpvsCmd.GET_SERVICE, flags: NLM_F_DUMP, payload: Buffer.alloc(0) };
    case 'newDest':
      return plain(IpvsCmd.NEW_DEST, encodeServiceKey(r.service), encodeDestFull(r.dest));
    case 'setDest':
      return plain(IpvsCmd.SET_DEST, encodeServiceKey(r.service), encodeDestFull(r.dest));
    case 'delDest':
      return plain(IpvsCmd.DEL_DEST, encodeServiceKey(r.service), encodeDestKey(r.dest));
    case 'dumpDests':
      return { cmd: IpvsCmd.GET_DEST, flags: NLM_F_DUMP, payload: encodeServiceKey(r.service) };
    case 'getConfig':
      return plain(IpvsCmd.GET_CONFIG);
    case 'setConfig':
      return plain(IpvsCmd.SET_CONFIG, encodeTimeouts(r.timeouts));
    case 'flush':
      return plain(IpvsCmd.FLUSH);
  }
}

/** Decode a request (the inverse of encodeIpvsRequest), for tests and traces. */
export function decodeIpvsRequest(e: EncodedIpvsRequest): IpvsRequest {
  const m = parseAttrs(e.payload);
  const svcNested = () => parseAttrs(need(m, CmdAttr.SERVICE, 'the nested service'));
  const svcFull = () => decodeServiceAttrs(need(m, CmdAttr.SERVICE, 'the nested service'));
  const destNested = () => parseAttrs(need(m, CmdAttr.DEST, 'the nested destination'));
  const dump = (e.flags & NLM_F_DUMP) === NLM_F_DUMP;
  switch (e.cmd) {
    case IpvsCmd.NEW_SERVICE:
      return { op: 'newService', service: svcFull() };
    case IpvsCmd.SET_SERVICE:
      return { op: 'setService', service: svcFull() };
    case IpvsCmd.DEL_SERVICE:
      return { op: 'delService', key: decodeServiceKey(svcNested()) };
    case IpvsCmd.GET_SERVICE:
      return dump ? { op: 'dumpServices' } : { op: 'getService', key: decodeServiceKey(svcNested()) };
    case IpvsCmd.NEW_DEST:
    case IpvsCmd.SET_DEST: {
      const service = decodeServiceKey(svcNested());
      const dest = decodeDestFull(destNested(), service.family);
      return { op: e.cmd === IpvsCmd.NEW_DEST ? 'newDest' : 'setDest', service, dest };
    }
    case IpvsCmd.DEL_DEST: {
      const service = decodeServiceKey(svcNested());
      return { op: 'delDest', service, dest: decodeDestKey(destNested(), service.family) };
    }
    case IpvsCmd.GET_DEST:
      return { op: 'dumpDests', service: decodeServiceKey(svcNested()) };
    case IpvsCmd.GET_CONFIG:
      return { op: 'getConfig' };
    case IpvsCmd.SET_CONFIG:
      return { op: 'setConfig', timeouts: decodeTimeouts(e.payload) };
    case IpvsCmd.FLUSH:
      return { op: 'flush' };
    default:
      throw new IpvsCodecError(`unknown IPVS command ${e.cmd}`);
  }
}

// ---------------------------------------------------------------------------------------
// Replies

/** Decode one GET_SERVICE reply payload (dump part or single answer). */
export function decodeServiceReply(payload: Buffer): IpvsService {
  return decodeServiceAttrs(need(parseAttrs(payload), CmdAttr.SERVICE, 'the nested service'));
}

/** Decode one GET_DEST dump part. */
export function decodeDestReply(payload: Buffer, serviceFamily: IpvsFamily = 'inet'): IpvsDestStatus {
  return decodeDestAttrs(need(parseAttrs(payload), CmdAttr.DEST, 'the nested destination'), serviceFamily);
}

/** Decode a GET_CONFIG reply (or a SET_CONFIG payload). */
export function decodeTimeouts(payload: Buffer): IpvsTimeouts {
  const m = parseAttrs(payload);
  const get = (t: number) => {
    const b = m.get(t);
    return b ? readU32(b, 'timeout') : 0;
  };
  return { tcp: get(CmdAttr.TIMEOUT_TCP), tcpFin: get(CmdAttr.TIMEOUT_TCP_FIN), udp: get(CmdAttr.TIMEOUT_UDP) };
}

/** Encode a GET_SERVICE reply the way the kernel does (flags mask ~0), to test decoders against. */
export function encodeServiceReply(s: IpvsService): Buffer {
  return encodeServiceFull(s);
}

/** Encode a GET_DEST reply part the way the kernel does, including counters. */
export function encodeDestReply(d: IpvsDestStatus): Buffer {
  const inner = encodeDestFull(d).subarray(4);
  return attr(
    CmdAttr.DEST,
    Buffer.concat([
      inner,
      u32(DestAttr.ACTIVE_CONNS, d.activeConns),
      u32(DestAttr.INACT_CONNS, d.inactiveConns),
      u32(DestAttr.PERSIST_CONNS, d.persistConns),
    ]),
  );
}
