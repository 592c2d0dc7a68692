/**
 * Pure: what a namespace's IPVS services, mark rules and SNAT rules mean as a load-balancing table. Shared by the
 * backend's read() and by `meshnet explain`, which reads the same objects without a backend.
 */
import type { LbTable, Scheduler, VirtualService } from '../lb-table.js';
import { EVERY_PORT_MARK_BASE } from './every-port-marks.js';
import { serviceKeyId, type IpvsState } from './ipvs-plan.js';
import type { MarkRule } from './mark-rules.js';

const FALLBACK_SCHEDULER: Scheduler = 'rr';
const KNOWN_SCHEDULERS: readonly string[] = ['rr', 'wrr', 'lc', 'sh', 'mh'];

/** What the table is read from besides IPVS itself. */
export interface IpvsReadBackInput {
  state: IpvsState;
  /** Mark rules keyed `${family}/${mark}` (family inet or inet6). */
  marks: ReadonlyMap<string, MarkRule>;
  /** SNAT sources by service id (snatSourcesFromState). */
  snat?: ReadonlyMap<string, string>;
  /** Table ids by IPVS key id, when the caller applied the table itself. */
  names?: ReadonlyMap<string, string>;
}

/** The table the kernel's IPVS objects make: ids from `names`, else the mark rule's comment, else the key. */
export function lbTableFromIpvs(input: IpvsReadBackInput): LbTable {
  const services: VirtualService[] = input.state.services.map(({ service, dests }) => {
    const kid = serviceKeyId(service.key);
    const k = service.key;
    const rule = k.kind === 'fwmark' ? input.marks.get(`${k.family}/${k.fwmark}`) : undefined;
    const id = input.names?.get(kid) ?? rule?.id ?? kid.replace(/[^a-z0-9_-]+/g, '-').slice(0, 48);
    const vs: VirtualService = {
      id,
      frontend:
        k.kind === 'vip'
          ? { kind: 'vip', address: k.address, protocol: k.protocol === 'udp' ? 'udp' : 'tcp', port: k.port }
          : rule && rule.port === 0 && rule.address !== undefined && k.fwmark >= EVERY_PORT_MARK_BASE
            ? { kind: 'vip', address: rule.address, protocol: rule.protocol, port: 0 }
            : { kind: 'fwmark', mark: k.fwmark, protocol: rule?.protocol ?? 'tcp', port: rule?.port ?? 0, ...(rule?.address !== undefined ? { address: rule.address } : {}) },
      scheduler: (KNOWN_SCHEDULERS.includes(service.scheduler) ? service.scheduler : FALLBACK_SCHEDULER) as Scheduler,
      backends: dests.map((d) => ({ address: d.address, port: d.port, weight: d.weight })),
    };
    if (service.flags & 1) vs.persistenceSeconds = service.timeout;
    const snat = input.snat?.get(id);
    if (snat !== undefined && k.family === 'inet') vs.sourceNat = snat;
    return vs;
  });
  return { services };
}
