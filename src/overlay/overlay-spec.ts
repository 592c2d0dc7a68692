import { cidrContains, isIpv4, parseCidr, parseMac } from '../sandbox/addresses.js';
import { InvalidSandboxInputError } from '../sandbox/errors.js';
import { validateOverlayV6 } from './overlay-v6-spec.js';
import { underlayAddressProblem, underlayFamily, vxlanOverhead } from './underlay-address.js';

export { VXLAN_OVERHEAD, VXLAN_OVERHEAD6 } from './underlay-address.js';

/** VXLAN's UDP port (IANA). */
export const VXLAN_PORT = 4789;
export const VNI_MIN = 1;
export const VNI_MAX = 16_777_215;

/** An overlay network as the data plane needs it. */
export interface OverlayNetwork {
  name: string;
  vni: number;
  /** e.g. 10.0.1.0/24 */
  subnet: string;
  /** br0's address, e.g. 10.0.1.1 */
  gateway: string;
  /** Dual stack: the v6 subnet (e.g. fd6d:6573:686e:1a2b::/64) and br0's v6 address; absent on v4-only networks. */
  subnet6?: string;
  gateway6?: string;
}

/** A task's (or the ingress sandbox's) interface on this host. */
export interface LocalEndpoint {
  /** Stable id (task id); names the host-side veth. */
  id: string;
  /** Namespace file of the sandbox the endpoint lives in. */
  sandbox: string;
  /** Interface name inside the sandbox (eth0, eth1, ...). */
  ifname: string;
  ip: string;
  mac: string;
  /** The endpoint's v6 address on a dual-stack network. */
  ip6?: string;
  /** Install a default route via the network's gateway. */
  defaultRoute?: boolean;
}

/** An endpoint on another host: reached through VXLAN to its host's underlay address. */
export interface RemoteEndpoint {
  ip: string;
  mac: string;
  /** Its v6 address on a dual-stack network (a second static neighbour, same MAC and VTEP). */
  ip6?: string;
  /** The remote host's underlay address (VTEP). */
  vtep: string;
}

export interface OverlayInput {
  network: OverlayNetwork;
  /** MTU of the underlay link the VXLAN packets leave by. */
  underlayMtu: number;
  /** Underlay source address of this host (v4 or v6; every remote VTEP must be of the same family). */
  localVtep?: string;
  /** The network is encrypted: refused over a v6 underlay, where meshnet has no ESP (absent: plain). */
  encrypted?: boolean;
  local: LocalEndpoint[];
  remote: RemoteEndpoint[];
}

const NET_NAME = /^[a-z0-9][a-z0-9_.-]{0,39}$/;

function fail(msg: string): never {
  throw new InvalidSandboxInputError(msg);
}

/** Validates an overlay input completely before anything touches the kernel. */
export function validateOverlayInput(input: OverlayInput): void {
  const n = input.network;
  if (!NET_NAME.test(n.name)) fail(`invalid network name ${JSON.stringify(n.name)}: 1-40 of a-z, 0-9, '_', '.', '-'`);
  if (!Number.isInteger(n.vni) || n.vni < VNI_MIN || n.vni > VNI_MAX) {
    fail(`VNI ${n.vni} of network ${n.name} is out of range: use ${VNI_MIN}-${VNI_MAX} (meshnet allocates from 4096)`);
  }
  const { prefix } = parseCidr(n.subnet);
  if (prefix > 30) fail(`subnet ${n.subnet} of network ${n.name} is too small: use /30 or larger`);
  if (!isIpv4(n.gateway) || !cidrContains(n.subnet, n.gateway)) fail(`gateway ${n.gateway} is not inside ${n.subnet}`);
  const overhead = vxlanOverhead(input.localVtep);
  if (!Number.isInteger(input.underlayMtu) || input.underlayMtu - overhead < 576) {
    fail(`underlay MTU ${input.underlayMtu} leaves too little for VXLAN: at least ${576 + overhead} is needed`);
  }
  const family = validateUnderlay(input);
  const seenIp = new Map<string, string>([[n.gateway, 'the gateway']]);
  const seenMac = new Set<string>();
  const seenIf = new Set<string>();
  const seenId = new Set<string>();
  const claim = (ip: string, mac: string, who: string) => {
    if (!isIpv4(ip) || !cidrContains(n.subnet, ip)) fail(`${who}: address ${ip} is not inside ${n.subnet}`);
    parseMac(mac);
    const prev = seenIp.get(ip);
    if (prev) fail(`duplicate IP ${ip} on network ${n.name}: ${who} and ${prev}`);
    if (seenMac.has(mac.toLowerCase())) fail(`duplicate MAC ${mac} on network ${n.name} (${who})`);
    seenIp.set(ip, who);
    seenMac.add(mac.toLowerCase());
  };
  for (const e of input.local) {
    if (!e.id) fail('a local endpoint has no id');
    if (seenId.has(e.id)) fail(`endpoint ${e.id} is listed twice on network ${n.name}`);
    seenId.add(e.id);
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(e.ifname)) fail(`endpoint ${e.id}: invalid interface name ${JSON.stringify(e.ifname)}`);
    const key = `${e.sandbox}\0${e.ifname}`;
    if (seenIf.has(key)) fail(`endpoint ${e.id}: ${e.ifname} is already used in ${e.sandbox}`);
    seenIf.add(key);
    claim(e.ip, e.mac, `endpoint ${e.id}`);
  }
  for (const r of input.remote) {
    if (underlayAddressProblem(r.vtep) !== undefined) fail(`remote endpoint ${r.ip}: invalid VTEP address ${JSON.stringify(r.vtep)}`);
    if (underlayFamily(r.vtep) !== family) {
      // One VXLAN device has one UDP socket of one family: it cannot reach a peer of the other.
      fail(`remote endpoint ${r.ip} is on a node with ${underlayFamily(r.vtep) === 'ipv6' ? 'an IPv6' : 'an IPv4'} underlay (${r.vtep}) but this node's is ${family === 'ipv6' ? 'IPv6' : 'IPv4'}: meshnet does not mix underlay families in one cluster, give every agent an --advertise-addr of the same family`);
    }
    claim(r.ip, r.mac, `remote endpoint on ${r.vtep}`);
  }
  validateOverlayV6(input, fail);
}

/** Checks this host's VTEP and what the network asks of it; returns the underlay family every peer must share. */
function validateUnderlay(input: OverlayInput): 'ipv4' | 'ipv6' {
  if (input.localVtep === undefined) return 'ipv4';
  const problem = underlayAddressProblem(input.localVtep);
  if (problem) fail(`local VTEP: ${problem}`);
  const family = underlayFamily(input.localVtep);
  if (input.encrypted && family === 'ipv6') {
    // Failing the network keeps it from carrying anything: better than sending an encrypted network in cleartext.
    fail(
      `network ${input.network.name} is encrypted, but this node's underlay is IPv6 (${input.localVtep}) and meshnet encrypts VXLAN over IPv4 only: ` +
        `remove the network and create it without --opt encrypted, or advertise IPv4 addresses`,
    );
  }
  return family;
}
