import { walkNlAttrs } from './netlink-attrs.js';
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as NL from 'netlink';
import { HostNamespaceRefusedError, InvalidSandboxInputError, toNetlinkError } from './errors.js';
import { homeNetnsIdentity, netnsIdentity, withNetns } from './netns-switch.js';
import { formatMac, ipv4ToBuffer, bufferToIpv4, parseCidr, parseMac } from './addresses.js';
import { bufferToIpv6, ipv6ToBuffer, parseCidr6 } from './addresses6.js';
import { vtepBuffer, vtepFromBuffer, vxlanLocalAttr, vxlanLocalFromAttrs } from './vtep-attrs.js';

// The netlink package is CommonJS with a native binding.
const nl = createRequire(import.meta.url)('netlink') as typeof NL;

const AF_INET = 2;
const AF_INET6 = 10;
/** rtnetlink scope of a global (not link-local, not host) address. */
const SCOPE_UNIVERSE = 0;
const AF_BRIDGE = 7;
/** linux/if_link.h: a bridge port's isolation flag. */
const IFLA_BRPORT_ISOLATED = 33;
const FLAGS_CREATE_EXCL = nl.FlagsNew.CREATE | nl.FlagsNew.EXCL;
const FLAGS_CREATE_REPLACE = nl.FlagsNew.CREATE | nl.FlagsNew.REPLACE;
const LINK_NAME = /^[A-Za-z0-9_.@-]{1,15}$/;

/** How rules and routes of one address family are written: the same netlink calls serve v4 and v6. */
interface Family {
  af: number;
  /** Bits of a single address (a rule's source length). */
  bits: number;
  any: string;
  parse(cidr: string): { ip: string; prefix: number };
  toBuf(ip: string): Buffer;
  fromBuf(b: Buffer): string;
}
const V4: Family = { af: AF_INET, bits: 32, any: '0.0.0.0', parse: parseCidr, toBuf: ipv4ToBuffer, fromBuf: bufferToIpv4 };
const V6: Family = { af: AF_INET6, bits: 128, any: '::', parse: parseCidr6, toBuf: ipv6ToBuffer, fromBuf: bufferToIpv6 };

/** A route message as meshnet sees it, addresses written by `ip` (v4 or v6). */
function routeInfo(m: NL.rt.RouteMessage, table: number, names: ReadonlyMap<number, string>, ip: (b: Buffer) => string): RouteInfo {
  const route: RouteInfo = { dst: m.attrs.dst ? `${ip(m.attrs.dst)}/${m.data.dstLen}` : 'default', table };
  if (m.attrs.gateway) route.gateway = ip(m.attrs.gateway);
  if (m.attrs.oif !== undefined) {
    route.oif = m.attrs.oif;
    const dev = names.get(m.attrs.oif);
    if (dev !== undefined) route.dev = dev;
  }
  return route;
}

/** A link as meshnet sees it. */
export interface LinkInfo {
  index: number;
  name: string;
  /** veth, bridge, vxlan, ... ; undefined for plain devices such as lo. */
  kind?: string;
  /** Index of the bridge this link is enslaved to. */
  master?: number;
  mtu: number;
  up: boolean;
  mac?: string;
  /** VXLAN settings when kind is vxlan. */
  vxlan?: { vni: number; port: number; learning: boolean; proxy: boolean; local?: string };
}

/** An IPv4 unicast route as meshnet sees it. */
export interface RouteInfo {
  /** `default` or a.b.c.d/len. */
  dst: string;
  table: number;
  gateway?: string;
  /** Index and name of the outgoing link. */
  oif?: number;
  dev?: string;
}

/** A source-address policy rule: `from <ip> lookup <table>` at `priority`. */
export interface RuleInfo {
  from: string;
  table: number;
  priority: number;
}

export interface AddressInfo {
  link: string;
  cidr: string;
}

export interface NeighborInfo {
  link: string;
  ip: string;
  mac: string;
  permanent: boolean;
}

export interface FdbInfo {
  link: string;
  mac: string;
  /** Remote VTEP for VXLAN entries. */
  dst?: string;
  permanent: boolean;
}

export interface VxlanSpec {
  name: string;
  vni: number;
  /** UDP destination port (4789). */
  port: number;
  learning: boolean;
  proxy: boolean;
  mtu: number;
  /** Underlay source address, v4 or v6 (a v6 one: VXLAN over IPv6). */
  local?: string;
  /** Underlay device index. */
  dev?: number;
}

export interface OpenOptions {
  /** Allow writes to the namespace this process runs in (the agent's configured host namespace). */
  allowHostNamespace?: boolean;
}

function flatten(data: NL.StreamData): Buffer {
  const s = new nl.AttrStream();
  s.emit(data);
  return Buffer.concat(s.bufs);
}

function checkLinkName(name: string): void {
  if (!LINK_NAME.test(name)) {
    throw new InvalidSandboxInputError(`invalid link name ${JSON.stringify(name)}: 1-15 characters of letters, digits, '_', '.', '-'`);
  }
}

/**
 * rtnetlink for one network namespace: the only code in meshnet that speaks it.
 * The socket is created inside the namespace and stays there, so every call acts on it.
 */
export class Rtnl {
  private readonly sock: NL.RtNetlinkSocket;
  private readonly where: string;
  private readonly writable: boolean;
  /** name -> ifindex, so repeated writes on one link cost one round trip each; dropped on any link change. */
  private readonly indexCache = new Map<string, number>();
  /**
   * ifindex -> name for address and route listings, which name links by index. A host with a
   * hundred task legs makes a link dump (parsed in JS) the dearest part of a resync's reads, so the
   * map is reused while every index asked for is in it, and dropped on any link change made here.
   */
  private linkNames: Map<number, string> | null = null;

  private constructor(sock: NL.RtNetlinkSocket, where: string, writable: boolean) {
    this.sock = sock;
    this.where = where;
    this.writable = writable;
  }

  /** Opens rtnetlink inside the namespace at `netnsPath` (null: the namespace this process runs in). */
  static open(netnsPath: string | null, opts: OpenOptions = {}): Rtnl {
    const isHome = netnsPath === null || netnsIdentity(netnsPath) === homeNetnsIdentity();
    const sock = withNetns(netnsPath, () => nl.createRtNetlink());
    return new Rtnl(sock, netnsPath ?? 'the home namespace', !isHome || opts.allowHostNamespace === true);
  }

  /** Closes the socket. */
  close(): void {
    this.sock.socket.close();
  }

  private guard(operation: string): void {
    if (!this.writable) throw new HostNamespaceRefusedError(operation);
  }

  private queue: Promise<unknown> = Promise.resolve();

  /** One request at a time per socket: the netlink package mixes up concurrent multipart dumps. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async call<T>(operation: string, object: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.serial(fn);
    } catch (err) {
      throw toNetlinkError(err, operation, `${object} in ${this.where}`);
    }
  }

  // ---- links ----

  /** Every link in the namespace. */
  async links(): Promise<LinkInfo[]> {
    const msgs = await this.call('list', 'links', () => this.sock.getLinks());
    return msgs.map((m) => toLinkInfo(m));
  }

  /** Names of the links with these indexes: the cached map while it knows them all, else a fresh dump. */
  private async namesOf(indexes: readonly (number | undefined)[]): Promise<Map<number, string>> {
    const cached = this.linkNames;
    if (cached && indexes.every((i) => i === undefined || cached.has(i))) return cached;
    const names = new Map((await this.links()).map((l) => [l.index, l.name]));
    this.linkNames = names;
    return names;
  }

  /** The link called `name`, or undefined. */
  async link(name: string): Promise<LinkInfo | undefined> {
    checkLinkName(name);
    try {
      const msgs = await this.serial(() => this.sock.getLink({}, { ifname: name }));
      return msgs[0] ? toLinkInfo(msgs[0]) : undefined;
    } catch (err) {
      const e = toNetlinkError(err, 'get', `link ${name} in ${this.where}`);
      if (e.errno === 'ENODEV') return undefined;
      throw e;
    }
  }

  /** The link called `name`; throws when missing. */
  async requireLink(name: string): Promise<LinkInfo> {
    const l = await this.link(name);
    if (!l) throw toNetlinkError(new Error('ENODEV'), 'find', `link ${name} in ${this.where}`);
    this.indexCache.set(name, l.index);
    return l;
  }

  /** ifindex of `name` (cached); throws when missing. */
  private async indexOf(name: string): Promise<number> {
    return this.indexCache.get(name) ?? (await this.requireLink(name)).index;
  }

  /** Creates a bridge. */
  async createBridge(name: string, opts: { mtu?: number; mac?: string } = {}): Promise<void> {
    this.guard(`create bridge ${name}`);
    checkLinkName(name);
    const attrs: NL.ifla.LinkAttrs = { ifname: name, linkinfo: flatten(nl.ifla.formatInfo({ kind: 'bridge' })) };
    if (opts.mtu) attrs.mtu = opts.mtu;
    if (opts.mac) attrs.address = parseMac(opts.mac);
    await this.call('create', `bridge ${name}`, () => this.sock.newLink({}, attrs, { flags: FLAGS_CREATE_EXCL }));
  }

  /** Creates a veth pair; the peer goes straight into `peerNetns` (a namespace path) when given. */
  async createVeth(name: string, peer: string, opts: { mtu?: number; peerNetns?: string; peerMac?: string } = {}): Promise<void> {
    this.guard(`create veth ${name}`);
    checkLinkName(name);
    checkLinkName(peer);
    const fd = opts.peerNetns ? openSync(opts.peerNetns, 'r') : undefined;
    try {
      const peerAttrs: NL.ifla.LinkAttrs = { ifname: peer };
      if (fd !== undefined) peerAttrs.netNsFd = fd;
      if (opts.mtu) peerAttrs.mtu = opts.mtu;
      if (opts.peerMac) peerAttrs.address = parseMac(opts.peerMac);
      const peerMsg = Buffer.concat([nl.rt.formatLink({}), flatten(nl.ifla.formatLinkAttrs(peerAttrs))]);
      const info = flatten(nl.ifla.formatInfo({ kind: 'veth', data: flatten(nl.ifla.formatVethInfo({ peer: peerMsg })) }));
      const attrs: NL.ifla.LinkAttrs = { ifname: name, linkinfo: info };
      if (opts.mtu) attrs.mtu = opts.mtu;
      await this.call('create', `veth ${name}/${peer}`, () => this.sock.newLink({}, attrs, { flags: FLAGS_CREATE_EXCL }));
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Creates a VXLAN device (no multicast group: remote endpoints come from static FDB entries). */
  async createVxlan(spec: VxlanSpec): Promise<void> {
    this.guard(`create vxlan ${spec.name}`);
    checkLinkName(spec.name);
    const port = Buffer.alloc(2);
    port.writeUInt16BE(spec.port);
    const vx: NL.ifla.Vxlan = { id: spec.vni, port, learning: spec.learning ? 1 : 0, proxy: spec.proxy ? 1 : 0, l2miss: 0, l3miss: 0 };
    if (spec.local) Object.assign(vx, vxlanLocalAttr(spec.local));
    if (spec.dev) vx.link = spec.dev;
    const info = flatten(nl.ifla.formatInfo({ kind: 'vxlan', data: flatten(nl.ifla.formatVxlan(vx)) }));
    await this.call('create', `vxlan ${spec.name} (vni ${spec.vni})`, () =>
      this.sock.newLink({}, { ifname: spec.name, mtu: spec.mtu, linkinfo: info }, { flags: FLAGS_CREATE_EXCL }),
    );
  }

  /**
   * Sets a bridge port's `isolated` flag (the kernel's IFLA_BRPORT_ISOLATED, iproute2's `bridge link set isolated`):
   * isolated ports exchange no frames with each other, only with ports that are not isolated. The flag travels as
   * bridge slave data in a link change, since the netlink package cannot mark IFLA_PROTINFO as nested.
   */
  async setBridgePort(name: string, port: { isolated: boolean }): Promise<void> {
    this.guard(`change bridge port ${name}`);
    const link = await this.requireLink(name);
    const isolated = Buffer.alloc(8);
    isolated.writeUInt16LE(5, 0); // attribute length: header and one byte (padded to 8)
    isolated.writeUInt16LE(IFLA_BRPORT_ISOLATED, 2);
    isolated.writeUInt8(port.isolated ? 1 : 0, 4);
    const info = flatten(nl.ifla.formatInfo({ slaveKind: 'bridge', slaveData: isolated }));
    await this.call('change', `bridge port ${name}`, () => this.sock.newLink({ index: link.index }, { linkinfo: info }));
  }

  /**
   * Whether a bridge port is isolated, from the port's own link reply (IFLA_INFO_SLAVE_DATA carries
   * IFLA_BRPORT_ISOLATED): an AF_BRIDGE request is answered only as a dump of every port, which on a
   * host with a hundred task legs cost more than the rest of a resync's reads.
   */
  async bridgePortIsolated(name: string): Promise<boolean> {
    checkLinkName(name);
    const msgs = await this.call('read', `bridge port ${name}`, () => this.sock.getLink({}, { ifname: name }));
    const linkinfo = msgs[0]?.attrs.linkinfo;
    const slave = linkinfo ? nl.ifla.parseInfo(linkinfo) : undefined;
    if (!msgs[0]) throw toNetlinkError(new Error('ENODEV'), 'find', `link ${name} in ${this.where}`);
    if (slave?.slaveKind !== 'bridge' || !slave.slaveData) return false;
    const v = walkNlAttrs(slave.slaveData).attrs.find((x) => x.type === IFLA_BRPORT_ISOLATED)?.data;
    return v !== undefined && v.length > 0 && v.readUInt8(0) === 1;
  }

  /** Changes a link: up/down, MTU, MAC, bridge master (0 to release), name, or moves it into another namespace. */
  async setLink(
    name: string,
    change: { up?: boolean; mtu?: number; mac?: string; master?: string | 0; rename?: string; netns?: string },
  ): Promise<void> {
    this.guard(`change link ${name}`);
    this.indexCache.clear();
    this.linkNames = null;
    const link = await this.requireLink(name);
    const attrs: NL.ifla.LinkAttrs = {};
    if (change.mtu) attrs.mtu = change.mtu;
    if (change.mac) attrs.address = parseMac(change.mac);
    if (change.rename) {
      checkLinkName(change.rename);
      attrs.ifname = change.rename;
    }
    if (change.master !== undefined) attrs.master = change.master === 0 ? 0 : (await this.requireLink(change.master)).index;
    const fd = change.netns ? openSync(change.netns, 'r') : undefined;
    if (fd !== undefined) attrs.netNsFd = fd;
    const data: NL.rt.Link = { index: link.index };
    if (change.up !== undefined) {
      data.flags = change.up ? { up: true } : {};
      data.change = { up: true };
    }
    try {
      await this.call('change', `link ${name}`, () => this.sock.setLink(data, attrs));
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Deletes a link (a veth's peer goes with it); missing is fine. */
  async deleteLink(name: string): Promise<boolean> {
    this.guard(`delete link ${name}`);
    this.indexCache.clear();
    this.linkNames = null;
    const link = await this.link(name);
    if (!link) return false;
    try {
      await this.serial(() => this.sock.delLink({ index: link.index }));
      return true;
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `link ${name} in ${this.where}`);
      if (e.errno === 'ENODEV') return false;
      throw e;
    }
  }

  // ---- addresses ----

  /** IPv4 addresses, per link. */
  async addresses(): Promise<AddressInfo[]> {
    const msgs = await this.call('list', 'addresses', () => this.sock.getAddresses({ family: AF_INET }));
    const names = await this.namesOf(msgs.map((m) => m.data.index));
    return msgs
      .filter((m) => m.data.family === AF_INET && (m.attrs.local ?? m.attrs.address))
      .map((m) => ({
        link: names.get(m.data.index ?? -1) ?? String(m.data.index),
        cidr: `${bufferToIpv4((m.attrs.local ?? m.attrs.address)!)}/${m.data.prefixlen}`,
      }));
  }

  /** Adds an IPv4 address (a.b.c.d/len); present already is fine. */
  async addAddress(linkName: string, cidr: string): Promise<void> {
    this.guard(`add address ${cidr}`);
    const { ip, prefix } = parseCidr(cidr);
    const link = await this.requireLink(linkName);
    const addr = ipv4ToBuffer(ip);
    try {
      await this.serial(() => this.sock.newAddress({ family: AF_INET, prefixlen: prefix, index: link.index }, { local: addr, address: addr }, { flags: FLAGS_CREATE_EXCL }));
    } catch (err) {
      const e = toNetlinkError(err, 'add', `address ${cidr} on ${linkName} in ${this.where}`);
      if (e.errno !== 'EEXIST') throw e;
    }
  }

  /** Removes an IPv4 address; missing is fine. */
  async deleteAddress(linkName: string, cidr: string): Promise<void> {
    this.guard(`delete address ${cidr}`);
    const { ip, prefix } = parseCidr(cidr);
    const link = await this.link(linkName);
    if (!link) return;
    const addr = ipv4ToBuffer(ip);
    try {
      await this.serial(() => this.sock.delAddress({ family: AF_INET, prefixlen: prefix, index: link.index }, { local: addr, address: addr }));
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `address ${cidr} on ${linkName} in ${this.where}`);
      if (e.errno !== 'EADDRNOTAVAIL' && e.errno !== 'ENODEV') throw e;
    }
  }

  // ---- routes ----

  /** Adds or replaces an IPv4 route in the main table (or `table`). */
  async replaceRoute(route: { dst: string | 'default'; gateway?: string; dev?: string; table?: number; src?: string }): Promise<void> {
    return this.replaceRouteOf(V4, route);
  }

  private async replaceRouteOf(f: Family, route: { dst: string | 'default'; gateway?: string; dev?: string; table?: number; src?: string }): Promise<void> {
    this.guard(`add route ${route.dst}`);
    const dst = route.dst === 'default' ? { ip: f.any, prefix: 0 } : f.parse(route.dst);
    const attrs: NL.rt.RouteAttrs = {};
    if (dst.prefix > 0) attrs.dst = f.toBuf(dst.ip);
    if (route.gateway) attrs.gateway = f.toBuf(route.gateway);
    if (route.src) attrs.prefsrc = f.toBuf(route.src);
    if (route.dev) attrs.oif = (await this.requireLink(route.dev)).index;
    const table = route.table ?? 254;
    if (table > 255) attrs.table = table;
    // A v4 route without a gateway is on-link; the kernel keeps every v6 route at universe scope.
    const scope = f === V4 && !route.gateway ? 'LINK' : 'UNIVERSE';
    await this.call('add', `route ${route.dst}`, () =>
      this.sock.newRoute({ family: f.af, dstLen: dst.prefix, table: table > 255 ? 252 : table, protocol: 'BOOT', scope, type: 'UNICAST' }, attrs, { flags: FLAGS_CREATE_REPLACE }),
    );
  }


  /** IPv4 unicast routes, of one table when `table` is given (main is 254). */
  async routes(filter: { table?: number } = {}): Promise<RouteInfo[]> {
    return this.routesOf(V4, filter.table);
  }

  /** Unicast routes of one family, of `table` only when given. */
  private async routesOf(f: Family, table?: number): Promise<RouteInfo[]> {
    const msgs = await this.call('list', f === V4 ? 'routes' : 'IPv6 routes', () => this.sock.getRoutes({ family: f.af }));
    const names = await this.namesOf(msgs.map((m) => m.attrs.oif));
    const out: RouteInfo[] = [];
    for (const m of msgs) {
      const t = m.attrs.table ?? m.data.table ?? 0;
      if (m.data.family !== f.af || m.data.type !== 'UNICAST' || (table !== undefined && t !== table)) continue;
      out.push(routeInfo(m, t, names, f.fromBuf));
    }
    return out;
  }


  /** Deletes the IPv4 route to `dst` in the main table (or `table`); missing is fine. Returns whether one was deleted. */
  deleteRoute(route: { dst: string | 'default'; table?: number }): Promise<boolean> {
    return this.deleteRouteOf(V4, route);
  }

  /** Source-address policy rules (IPv4, from a single address) with their table and priority. */
  rules(): Promise<RuleInfo[]> {
    return this.rulesOf(V4);
  }

  /** Adds `from <ip> lookup <table>` at `priority`; the kernel keeps duplicates, so callers check `rules()` first. */
  addRule(rule: RuleInfo): Promise<void> {
    return this.addRuleOf(V4, rule);
  }

  /** Adds `from <ip> lookup <table>` at `priority` unless that exact rule exists. */
  async replaceRule(rule: RuleInfo): Promise<void> {
    const have = await this.rules();
    if (have.some((x) => x.from === rule.from && x.table === rule.table && x.priority === rule.priority)) return;
    await this.addRule(rule);
  }

  /** Deletes the rule `from <ip> lookup <table>` at `priority`; missing is fine. Returns whether one was deleted. */
  deleteRule(rule: RuleInfo): Promise<boolean> {
    return this.deleteRuleOf(V4, rule);
  }

  private async deleteRouteOf(f: Family, route: { dst: string | 'default'; table?: number }): Promise<boolean> {
    this.guard(`delete route ${route.dst}`);
    const dst = route.dst === 'default' ? { ip: f.any, prefix: 0 } : f.parse(route.dst);
    const table = route.table ?? 254;
    const attrs: NL.rt.RouteAttrs = { table };
    if (dst.prefix > 0) attrs.dst = f.toBuf(dst.ip);
    try {
      // Scope NOWHERE on a delete matches a route of any scope, as `ip route del` does.
      await this.serial(() => this.sock.delRoute({ family: f.af, dstLen: dst.prefix, table: table > 255 ? 252 : table, scope: 'NOWHERE' }, attrs));
      return true;
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `route ${route.dst} (table ${table}) in ${this.where}`);
      if (e.errno === 'ESRCH' || e.errno === 'ENOENT') return false;
      throw e;
    }
  }

  private async rulesOf(f: Family): Promise<RuleInfo[]> {
    const msgs = await this.call('list', f.af === AF_INET ? 'rules' : 'IPv6 rules', () => this.sock.getRules({ family: f.af }));
    return msgs
      .filter((m) => m.attrs.src && m.data.srcLen === f.bits)
      .map((m) => ({ from: f.fromBuf(m.attrs.src!), table: m.attrs.table ?? m.data.table ?? 0, priority: m.attrs.priority ?? 0 }));
  }

  private async addRuleOf(f: Family, rule: RuleInfo): Promise<void> {
    this.guard(`add rule from ${rule.from}`);
    await this.call('add', `rule from ${rule.from} lookup ${rule.table}`, () =>
      this.sock.newRule(
        { family: f.af, srcLen: f.bits, table: rule.table > 255 ? 252 : rule.table, action: 'toTbl' },
        { src: f.toBuf(rule.from), table: rule.table, priority: rule.priority },
        { flags: FLAGS_CREATE_EXCL },
      ),
    );
  }

  private async deleteRuleOf(f: Family, rule: RuleInfo): Promise<boolean> {
    this.guard(`delete rule from ${rule.from}`);
    try {
      await this.serial(() =>
        this.sock.delRule(
          { family: f.af, srcLen: f.bits, table: rule.table > 255 ? 252 : rule.table, action: 'toTbl' },
          { src: f.toBuf(rule.from), table: rule.table, priority: rule.priority },
        ),
      );
      return true;
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `rule from ${rule.from} lookup ${rule.table} in ${this.where}`);
      if (e.errno === 'ENOENT' || e.errno === 'ESRCH') return false;
      throw e;
    }
  }

  // ---- neighbours and FDB ----

  /** Permanent IPv4 neighbour entries on `linkName`. */
  async neighbors(linkName: string): Promise<NeighborInfo[]> {
    const link = await this.link(linkName);
    if (!link) return [];
    const msgs = await this.call('list', `neighbours of ${linkName}`, () => this.sock.getNeighbors({ family: AF_INET }));
    return msgs
      .filter((m) => m.data.ifindex === link.index && m.attrs.dst && m.attrs.lladdr)
      .map((m) => ({ link: linkName, ip: bufferToIpv4(m.attrs.dst!), mac: formatMac(m.attrs.lladdr!), permanent: !!m.data.state?.permanent }));
  }

  /** Adds or replaces a permanent neighbour entry (IP -> MAC). */
  async replaceNeighbor(linkName: string, ip: string, mac: string): Promise<void> {
    this.guard(`add neighbour ${ip}`);
    const ifindex = await this.indexOf(linkName);
    await this.call('add', `neighbour ${ip} -> ${mac} on ${linkName}`, () =>
      this.sock.newNeighbor(
        { family: AF_INET, ifindex, state: { permanent: true } },
        { dst: ipv4ToBuffer(ip), lladdr: parseMac(mac) },
        { flags: FLAGS_CREATE_REPLACE },
      ),
    );
  }

  /** Deletes a neighbour entry; missing is fine. */
  async deleteNeighbor(linkName: string, ip: string): Promise<void> {
    this.guard(`delete neighbour ${ip}`);
    const link = await this.link(linkName);
    if (!link) return;
    try {
      await this.serial(() => this.sock.delNeighbor({ family: AF_INET, ifindex: link.index }, { dst: ipv4ToBuffer(ip) }));
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `neighbour ${ip} on ${linkName} in ${this.where}`);
      if (e.errno !== 'ENOENT' && e.errno !== 'ENODEV') throw e;
    }
  }

  // ---- IPv6 (dual-stack networks only; nothing here runs on a v4-only host) ----

  /** Global-scope IPv6 addresses, per link (link-local ones are the kernel's and not listed). */
  async addresses6(): Promise<AddressInfo[]> {
    const msgs = await this.call('list', 'IPv6 addresses', () => this.sock.getAddresses({ family: AF_INET6 }));
    const names = await this.namesOf(msgs.map((m) => m.data.index));
    return msgs
      .filter((m) => m.data.family === AF_INET6 && m.data.scope === SCOPE_UNIVERSE && (m.attrs.local ?? m.attrs.address))
      .map((m) => ({ link: names.get(m.data.index ?? -1) ?? String(m.data.index), cidr: `${bufferToIpv6((m.attrs.local ?? m.attrs.address)!)}/${m.data.prefixlen}` }));
  }

  /**
   * Adds or replaces an IPv6 address (addr/len). `nodad` (the default) skips duplicate address detection: meshnet's
   * addresses are allocated by the store, and DAD would hold each one tentative, so unusable, for a second.
   */
  async replaceAddress6(linkName: string, cidr: string, opts: { nodad?: boolean } = {}): Promise<void> {
    this.guard(`add address ${cidr}`);
    const { ip, prefix } = parseCidr6(cidr);
    const index = await this.indexOf(linkName);
    const addr = ipv6ToBuffer(ip);
    const flags = opts.nodad === false ? {} : { nodad: true as const };
    await this.call('add', `address ${cidr} on ${linkName}`, () =>
      this.sock.newAddress({ family: AF_INET6, prefixlen: prefix, index, flags }, { local: addr, address: addr }, { flags: FLAGS_CREATE_REPLACE }),
    );
  }

  /** Removes an IPv6 address; missing is fine. */
  async deleteAddress6(linkName: string, cidr: string): Promise<void> {
    this.guard(`delete address ${cidr}`);
    const { ip, prefix } = parseCidr6(cidr);
    const link = await this.link(linkName);
    if (!link) return;
    const addr = ipv6ToBuffer(ip);
    try {
      await this.serial(() => this.sock.delAddress({ family: AF_INET6, prefixlen: prefix, index: link.index }, { local: addr, address: addr }));
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `address ${cidr} on ${linkName} in ${this.where}`);
      if (e.errno !== 'EADDRNOTAVAIL' && e.errno !== 'ENODEV') throw e;
    }
  }

  /** Adds or replaces an IPv6 route in the main table (or `table`): a sandbox's v6 default route, a v6 return route. */
  async replaceRoute6(route: { dst: string | 'default'; gateway?: string; dev?: string; table?: number }): Promise<void> {
    return this.replaceRouteOf(V6, route);
  }


  /** IPv6 unicast routes of the main table (or `table`). */
  async routes6(filter: { table?: number } = {}): Promise<RouteInfo[]> {
    return this.routesOf(V6, filter.table ?? 254);
  }


  /** Deletes the IPv6 route to `dst` in the main table (or `table`); missing is fine. Returns whether one was deleted. */
  deleteRoute6(route: { dst: string | 'default'; table?: number }): Promise<boolean> {
    return this.deleteRouteOf(V6, route);
  }

  /** Source-address policy rules of IPv6 (from a single address), as rules() for IPv4. */
  rules6(): Promise<RuleInfo[]> {
    return this.rulesOf(V6);
  }

  /** Adds the IPv6 rule `from <ip> lookup <table>` at `priority`; callers check `rules6()` first. */
  addRule6(rule: RuleInfo): Promise<void> {
    return this.addRuleOf(V6, rule);
  }

  /** Deletes the IPv6 rule `from <ip> lookup <table>` at `priority`; missing is fine. Returns whether one was deleted. */
  deleteRule6(rule: RuleInfo): Promise<boolean> {
    return this.deleteRuleOf(V6, rule);
  }

  /** IPv6 neighbour entries on `linkName` (with a MAC; `permanent` tells the static ones). */
  async neighbors6(linkName: string): Promise<NeighborInfo[]> {
    const link = await this.link(linkName);
    if (!link) return [];
    const msgs = await this.call('list', `IPv6 neighbours of ${linkName}`, () => this.sock.getNeighbors({ family: AF_INET6 }));
    return msgs
      .filter((m) => m.data.ifindex === link.index && m.attrs.dst && m.attrs.lladdr)
      .map((m) => ({ link: linkName, ip: bufferToIpv6(m.attrs.dst!), mac: formatMac(m.attrs.lladdr!), permanent: !!m.data.state?.permanent }));
  }

  /** Adds or replaces a permanent IPv6 neighbour entry (IP -> MAC). */
  async replaceNeighbor6(linkName: string, ip: string, mac: string): Promise<void> {
    this.guard(`add neighbour ${ip}`);
    const ifindex = await this.indexOf(linkName);
    const dst = ipv6ToBuffer(ip);
    await this.call('add', `neighbour ${ip} -> ${mac} on ${linkName}`, () =>
      this.sock.newNeighbor({ family: AF_INET6, ifindex, state: { permanent: true } }, { dst, lladdr: parseMac(mac) }, { flags: FLAGS_CREATE_REPLACE }),
    );
  }

  /** Deletes an IPv6 neighbour entry; missing is fine. */
  async deleteNeighbor6(linkName: string, ip: string): Promise<void> {
    this.guard(`delete neighbour ${ip}`);
    const link = await this.link(linkName);
    if (!link) return;
    const dst = ipv6ToBuffer(ip);
    try {
      await this.serial(() => this.sock.delNeighbor({ family: AF_INET6, ifindex: link.index }, { dst }));
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `neighbour ${ip} on ${linkName} in ${this.where}`);
      if (e.errno !== 'ENOENT' && e.errno !== 'ENODEV') throw e;
    }
  }

  /** Bridge FDB entries of `linkName` (for vxlan: MAC -> remote VTEP). */
  async fdb(linkName: string): Promise<FdbInfo[]> {
    const link = await this.link(linkName);
    if (!link) return [];
    const msgs = await this.call('list', `fdb of ${linkName}`, () => this.sock.getNeighbors({ family: AF_BRIDGE }));
    return msgs
      .filter((m) => m.data.ifindex === link.index && m.attrs.lladdr)
      .map((m) => {
        const entry: FdbInfo = { link: linkName, mac: formatMac(m.attrs.lladdr!), permanent: !!m.data.state?.permanent };
        if (m.attrs.dst) entry.dst = vtepFromBuffer(m.attrs.dst);
        return entry;
      });
  }

  /** Adds or replaces a static FDB entry on a VXLAN device: frames for `mac` go to VTEP `dst`. */
  async replaceFdb(linkName: string, mac: string, dst: string): Promise<void> {
    this.guard(`add fdb ${mac}`);
    const ifindex = await this.indexOf(linkName);
    await this.call('add', `fdb ${mac} -> ${dst} on ${linkName}`, () =>
      this.sock.newNeighbor(
        { family: AF_BRIDGE, ifindex, state: { permanent: true }, flags: { self: true } },
        { lladdr: parseMac(mac), dst: vtepBuffer(dst) },
        { flags: FLAGS_CREATE_REPLACE },
      ),
    );
  }

  /** Deletes a static FDB entry; missing is fine. */
  async deleteFdb(linkName: string, mac: string, dst?: string): Promise<void> {
    this.guard(`delete fdb ${mac}`);
    const link = await this.link(linkName);
    if (!link) return;
    const attrs: NL.rt.NeighborAttrs = { lladdr: parseMac(mac) };
    if (dst) attrs.dst = vtepBuffer(dst);
    try {
      await this.serial(() => this.sock.delNeighbor({ family: AF_BRIDGE, ifindex: link.index, flags: { self: true } }, attrs));
    } catch (err) {
      const e = toNetlinkError(err, 'delete', `fdb ${mac} on ${linkName} in ${this.where}`);
      if (e.errno !== 'ENOENT' && e.errno !== 'ENODEV') throw e;
    }
  }
}

function toLinkInfo(m: NL.rt.LinkMessage): LinkInfo {
  const a = m.attrs;
  const info: LinkInfo = { index: m.data.index ?? 0, name: a.ifname ?? '', mtu: a.mtu ?? 0, up: !!m.data.flags?.up };
  if (a.master) info.master = a.master;
  if (a.address && a.address.length === 6) info.mac = formatMac(a.address);
  if (a.linkinfo) {
    const li = nl.ifla.parseInfo(a.linkinfo);
    if (li.kind) info.kind = li.kind;
    if (li.kind === 'vxlan' && li.data) {
      const vx = nl.ifla.parseVxlan(li.data);
      info.vxlan = { vni: vx.id ?? 0, port: vx.port ? vx.port.readUInt16BE(0) : 0, learning: !!vx.learning, proxy: !!vx.proxy };
      const local = vxlanLocalFromAttrs(vx);
      if (local) info.vxlan.local = local;
    }
  }
  return info;
}
