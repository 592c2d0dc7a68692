import { formatSubnet, parseIpv4, subnetsOverlap, type Ipv4Subnet } from '../model/ipv4.js';
import { InvalidMeshInputError, MeshError } from './errors.js';

/** An address or route the host holds, as `a.b.c.d/len` (host bits allowed), and the link it is on. */
export interface HostCidr {
  cidr: string;
  dev?: string;
}

/** No candidate /16 for the gwbridge is free on this host. */
export class GwbridgeSubnetExhaustedError extends MeshError {
  constructor(readonly candidates: number) {
    super(
      'MESH_GWBRIDGE_SUBNET_EXHAUSTED',
      `none of the ${candidates} candidate /16 subnets for the gwbridge (172.18-31.0.0/16, 10.254-0.0.0/16) is free of ` +
        "this host's routes and addresses; give one with --gwbridge-subnet",
    );
  }
}

// Docker's own pools start at 172.17 (docker0) and hand out 172.18 first: Docker's order, so a
// host without Docker gets what Docker users expect. The 10.x candidates go from the top down:
// overlay subnets are /24s taken from 10.0.0.0 upwards (model/ipam.ts), and 10.255/16 is ingress.
function candidates(): Ipv4Subnet[] {
  const out: Ipv4Subnet[] = [];
  for (let b = 18; b <= 31; b++) out.push({ network: ((172 << 24) | (b << 16)) >>> 0, prefixLength: 16 });
  for (let b = 254; b >= 0; b--) out.push({ network: ((10 << 24) | (b << 16)) >>> 0, prefixLength: 16 });
  return out;
}

function parseHostCidr(text: string): Ipv4Subnet | null {
  if (text.includes(':')) return null; // IPv6: cannot overlap an IPv4 bridge subnet
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const address = m ? parseIpv4(m[1]!) : undefined;
  const prefixLength = m ? Number(m[2]) : NaN;
  if (address === undefined || !(prefixLength <= 32)) {
    throw new InvalidMeshInputError(`invalid host address or route ${JSON.stringify(text)}: expected a.b.c.d/len`);
  }
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return { network: (address & mask) >>> 0, prefixLength };
}

/**
 * Pure: the gwbridge subnet for a host that was given none. If the bridge (`bridge`) already
 * holds an address, its subnet is kept, so a restart never renumbers running tasks. Otherwise
 * the first of 172.18.0.0/16 ... 172.31.0.0/16, then 10.254.0.0/16 ... 10.0.0.0/16, that
 * overlaps none of the host's addresses and routes (`host`: IPv6 entries and default routes
 * are ignored) nor `exclude` (pass the cluster's overlay subnets).
 */
export function chooseGwbridgeSubnet(host: readonly HostCidr[], opts: { bridge?: string; exclude?: readonly string[] } = {}): string {
  const own = host.find((h) => opts.bridge !== undefined && h.dev === opts.bridge && !h.cidr.includes(':'));
  if (own) return formatSubnet(parseHostCidr(own.cidr)!);
  const taken = [...host.map((h) => h.cidr), ...(opts.exclude ?? [])]
    .map(parseHostCidr)
    // A default route claims no range: every candidate would "overlap" it.
    .filter((s): s is Ipv4Subnet => s !== null && s.prefixLength > 0);
  const all = candidates();
  const free = all.find((c) => !taken.some((t) => subnetsOverlap(c, t)));
  if (!free) throw new GwbridgeSubnetExhaustedError(all.length);
  return formatSubnet(free);
}
