import type { NameView } from './name-view.js';
import { ipv6Bytes, ipv6PtrName } from './aaaa-records.js';
import {
  ipv4Bytes,
  recordAtQuestion,
  recordNamed,
  reverseName,
  TYPE_A,
  TYPE_AAAA,
  TYPE_PTR,
  TYPE_SRV,
  encodeName,
} from './wire.js';

/** Default TTL: short, so clients move off dead tasks quickly (Swarm's fixed 600 s does not). */
export const DEFAULT_TTL_SECONDS = 5;

/** A ready-made answer body for one (name, type): records already in wire form. */
export interface PreparedAnswer {
  /** Answer records, each complete (owner written as a pointer to the echoed question). */
  answers: Buffer[];
  /** Answer order is shuffled per reply (task IPs), so clients spread over tasks. */
  shuffle: boolean;
  /** Additional records (SRV glue); left out first when a UDP answer must be truncated. */
  additional: Buffer[];
}

/** All names a task may resolve, by lower-case name then query type. */
export class AnswerTable {
  constructor(
    private readonly names: ReadonlyMap<string, ReadonlyMap<number, PreparedAnswer>>,
    /** Whether unknown names go to upstream servers (else they get NXDOMAIN). */
    readonly forwarding: boolean,
  ) {}

  /** Records of `qname` by type, or undefined when the name is not ours. */
  lookup(qname: string): ReadonlyMap<number, PreparedAnswer> | undefined {
    return this.names.get(qname);
  }

  /** Number of names served (for logs and tests). */
  get size(): number {
    return this.names.size;
  }

  /** The names served (tests). */
  nameList(): string[] {
    return [...this.names.keys()];
  }
}

/** An answer with no records: the name exists but has no data of the asked type (NOERROR). */
export const NO_DATA: PreparedAnswer = { answers: [], shuffle: false, additional: [] };

class TableBuilder {
  readonly names = new Map<string, Map<number, PreparedAnswer>>();

  constructor(private readonly ttl: number) {}

  /** First writer wins: the task's first network shadows later ones for unqualified names. */
  add(name: string, type: number, answer: PreparedAnswer): void {
    const key = name.toLowerCase();
    let byType = this.names.get(key);
    if (!byType) {
      byType = new Map();
      this.names.set(key, byType);
    }
    if (!byType.has(type)) byType.set(type, answer);
  }

  addresses(name: string, ips: readonly string[], shuffle: boolean): void {
    const answers = ips.map((ip) => recordAtQuestion(TYPE_A, this.ttl, ipv4Bytes(ip)));
    this.add(name, TYPE_A, { answers, shuffle: shuffle && answers.length > 1, additional: [] });
  }

  addresses6(name: string, ips: readonly string[], shuffle: boolean): void {
    const answers = ips.map((ip) => recordAtQuestion(TYPE_AAAA, this.ttl, ipv6Bytes(ip)));
    this.add(name, TYPE_AAAA, { answers, shuffle: shuffle && answers.length > 1, additional: [] });
  }

  pointer(ip: string, target: string): void {
    this.add(ip.includes(':') ? ipv6PtrName(ip) : reverseName(ip), TYPE_PTR, {
      answers: [recordAtQuestion(TYPE_PTR, this.ttl, encodeName(target))],
      shuffle: false,
      additional: [],
    });
  }

  service(name: string, port: number, target: string, targetIps: readonly string[]): void {
    const rdata = Buffer.concat([Buffer.from([0, 0, 0, 0, port >> 8, port & 0xff]), encodeName(target)]);
    const glue = targetIps.map((ip) => recordNamed(target, TYPE_A, this.ttl, ipv4Bytes(ip)));
    this.add(name, TYPE_SRV, { answers: [recordAtQuestion(TYPE_SRV, this.ttl, rdata)], shuffle: false, additional: glue });
  }
}

/**
 * Compiles a task's NameView into ready-made wire answers (pure). Rebuilt whenever the view
 * changes, so a query costs a map lookup and a copy instead of an encode.
 *
 * Per network N the task is on (first network wins for unqualified names):
 * `<svc>` and `<svc>.N` (and aliases) -> VIP, or the task IPs shuffled in dnsrr mode;
 * `tasks.<svc>[.N]` -> every running task IP, shuffled; `<task>[.N]` and task aliases -> task IP;
 * PTR of a task IP -> `<task>.N`, of a VIP -> `<svc>.N`;
 * SRV `_<port>._<proto>.<svc>[.N]` for each published port (by target or published port) ->
 * `0 0 <targetPort> <svc>.N` with the A records of `<svc>.N` as glue.
 */
export function compileAnswerTable(view: NameView, opts: { ttlSeconds?: number; forwarding: boolean }): AnswerTable {
  const b = new TableBuilder(opts.ttlSeconds ?? DEFAULT_TTL_SECONDS);
  for (const net of view.networks) {
    for (const svc of net.services) {
      const ips = svc.endpointMode === 'vip' ? (svc.vip ? [svc.vip] : []) : svc.taskIps;
      const shuffle = svc.endpointMode === 'dnsrr';
      const qualified = `${svc.name}.${net.name}`;
      for (const base of [svc.name, ...svc.aliases]) {
        for (const name of [base, `${base}.${net.name}`]) {
          b.addresses(name, ips, shuffle);
          b.addresses(`tasks.${name}`, svc.taskIps, true);
          if (svc.taskIps6 !== undefined) {
            b.addresses6(name, svc.endpointMode === 'vip' ? (svc.vip6 ? [svc.vip6] : []) : svc.taskIps6, shuffle);
            b.addresses6(`tasks.${name}`, svc.taskIps6, true);
          } else if (svc.vip6) b.addresses6(name, [svc.vip6], false);
          for (const p of svc.ports) {
            for (const port of new Set([p.targetPort, p.publishedPort])) {
              b.service(`_${port}._${p.protocol}.${name}`, p.targetPort, qualified, ips);
            }
          }
        }
      }
      if (svc.vip) b.pointer(svc.vip, qualified);
      if (svc.vip6) b.pointer(svc.vip6, qualified);
    }
    for (const task of net.tasks) {
      for (const base of [task.name, ...task.aliases]) {
        b.addresses(base, [task.ip], false);
        b.addresses(`${base}.${net.name}`, [task.ip], false);
        if (task.ip6) for (const name of [base, `${base}.${net.name}`]) b.addresses6(name, [task.ip6], false);
      }
      b.pointer(task.ip, `${task.name}.${net.name}`);
      if (task.ip6) b.pointer(task.ip6, `${task.name}.${net.name}`);
    }
  }
  return new AnswerTable(b.names, opts.forwarding);
}
