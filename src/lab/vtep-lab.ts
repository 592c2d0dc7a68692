import type { Lab } from './lab.js';
import { OverlayDriver } from '../overlay/overlay-driver.js';
import { VTEP_PROBE_SYSCTL } from '../overlay/vtep-socket.js';
import { macForIpv4 } from '../sandbox/addresses.js';
import { Rtnl } from '../sandbox/rtnl.js';
import { setSysctl } from '../sandbox/sysctl.js';

/** Two sandboxes, one on each of a lab's first two hosts, joined by a real VXLAN overlay. */
export interface SandboxPair {
  /** Namespace files of host-a's and host-b's sandbox. */
  sboxes: [string, string];
  /** Their overlay addresses. */
  ips: [string, string];
}

/**
 * What a VTEP prober needs around it, as the agent wires it: a sandbox per host on one overlay
 * (VNI `vni`, 10.77.0.0/24), each the other's remote endpoint. `allowPing` sets host-a's
 * sandbox's ping_group_range as the node plan does (left out, probes cannot be sent yet).
 */
export async function sandboxPair(lab: Lab, opts: { vni?: number; allowPing?: boolean } = {}): Promise<SandboxPair> {
  const network = { name: 'ingress', vni: opts.vni ?? 4377, subnet: '10.77.0.0/24', gateway: '10.77.0.1' };
  const ips: [string, string] = ['10.77.0.2', '10.77.0.3'];
  const sboxes: [string, string] = [lab.netns('sbox', 0), lab.netns('sbox', 1)];
  for (const h of [0, 1]) {
    const other = 1 - h;
    await new OverlayDriver({ netnsDir: lab.hosts[h]!.dir, hostNetns: lab.hosts[h]!.netns }).apply({
      network,
      underlayMtu: 1500,
      localVtep: lab.hosts[h]!.underlayIp,
      local: [{ id: 'sbox', sandbox: sboxes[h]!, ifname: 'eth0', ip: ips[h]!, mac: macForIpv4(ips[h]!) }],
      remote: [{ ip: ips[other]!, mac: macForIpv4(ips[other]!), vtep: lab.hosts[other]!.underlayIp }],
    });
  }
  if (opts.allowPing) allowPing(sboxes[0]);
  return { sboxes, ips };
}

/** Lets the agent's ping sockets into `sbox`, as the node plan does. */
export function allowPing(sbox: string): void {
  setSysctl(sbox, VTEP_PROBE_SYSCTL.key, VTEP_PROBE_SYSCTL.value);
}

/** Sets lab host `host`'s underlay link up or down (node loss takes it down). */
export async function setUnderlay(lab: Lab, host: number, up: boolean): Promise<void> {
  const r = Rtnl.open(lab.hosts[host]!.netns);
  try {
    await r.setLink('eth0', { up });
  } finally {
    r.close();
  }
}
