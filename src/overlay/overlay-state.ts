import { createHash } from 'node:crypto';
import { parseCidr } from '../sandbox/addresses.js';
import { validateNetnsName } from '../sandbox/netns.js';
import { type OverlayInput, validateOverlayInput, VXLAN_PORT } from './overlay-spec.js';
import { canonicalUnderlay, vxlanOverhead } from './underlay-address.js';
import { desiredOverlayV6, type OverlayV6State } from './overlay-v6-state.js';

/** The kernel objects one overlay network needs on one host, as comparable plain data. */
export interface OverlayState {
  /** Name of the overlay namespace (Docker: 1-<netid>). */
  netns: string;
  bridge: { name: 'br0'; cidr: string; mtu: number };
  vxlan: { name: 'vxlan0'; vni: number; port: number; mtu: number; learning: false; proxy: true; local?: string };
  endpoints: EndpointState[];
  /** One neighbour + one FDB entry per remote endpoint, sorted by IP. */
  peers: PeerState[];
  /** The v6 half of a dual-stack network; absent on v4-only networks. */
  ipv6?: OverlayV6State;
}

export interface EndpointState {
  id: string;
  /** Host-side veth name inside the overlay namespace, derived from the endpoint id. */
  hostIf: string;
  sandbox: string;
  ifname: string;
  cidr: string;
  mac: string;
  mtu: number;
  gateway?: string;
}

export interface PeerState {
  ip: string;
  mac: string;
  vtep: string;
}

/** Namespace name of a network's overlay sandbox. */
export function overlayNetnsName(network: string): string {
  const name = `ov-${network}`;
  validateNetnsName(name);
  return name;
}

/** Host-side veth name for an endpoint: stable, 15 characters at most. */
export function hostIfName(endpointId: string, vni: number): string {
  return `ve${createHash('sha256').update(`${vni}/${endpointId}`).digest('hex').slice(0, 11)}`;
}

const byIp = (a: { ip: string }, b: { ip: string }) => a.ip.localeCompare(b.ip, 'en', { numeric: true });

/** The desired overlay state for one network on one host: a pure function of its inputs. */
export function desiredOverlayState(input: OverlayInput): OverlayState {
  validateOverlayInput(input);
  const { network } = input;
  const { prefix } = parseCidr(network.subnet);
  const mtu = input.underlayMtu - vxlanOverhead(input.localVtep);
  const vxlan: OverlayState['vxlan'] = { name: 'vxlan0', vni: network.vni, port: VXLAN_PORT, mtu, learning: false, proxy: true };
  if (input.localVtep) vxlan.local = canonicalUnderlay(input.localVtep);
  const ipv6 = desiredOverlayV6(input);
  return {
    ...(ipv6 !== undefined ? { ipv6 } : {}),
    netns: overlayNetnsName(network.name),
    bridge: { name: 'br0', cidr: `${network.gateway}/${prefix}`, mtu },
    vxlan,
    endpoints: input.local
      .map((e) => {
        const s: EndpointState = {
          id: e.id,
          hostIf: hostIfName(e.id, network.vni),
          sandbox: e.sandbox,
          ifname: e.ifname,
          cidr: `${e.ip}/${prefix}`,
          mac: e.mac.toLowerCase(),
          mtu,
        };
        if (e.defaultRoute) s.gateway = network.gateway;
        return s;
      })
      .sort((a, b) => a.hostIf.localeCompare(b.hostIf)),
    // Canonical text: the FDB's dst reads back so, and a v6 VTEP written in another form would be rewritten every pass.
    peers: input.remote.map((r) => ({ ip: r.ip, mac: r.mac.toLowerCase(), vtep: canonicalUnderlay(r.vtep) })).sort(byIp),
  };
}
