/**
 * LbBackend on IPVS: computes the difference between the table and what the kernel holds
 * (pure, in ipvs-plan.ts) and applies it through the IPVS client; firewall-mark frontends
 * also get their mangle MARK rules through the mesh's IptablesWriter, the namespace's one
 * iptables writer (and, for v6 services, its one ip6tables writer, made on first need).
 */
import type { ApplyReport, LbBackend, LbTable } from '../lb-table.js';
import type { IpvsFamily, IpvsTimeouts } from './codec.js';
import { IpvsClient, type EnterNamespace } from './ipvs-client.js';
import { ipvsStateFromTable, planIpvs, serviceKeyId, validateLbTable, type IpvsOp, type IpvsState } from './ipvs-plan.js';
import { ipvsTimeouts, timeoutsLogEvent } from './ipvs-tuning.js';
import { IptablesWriter } from '../../mesh/iptables-writer.js';
import { markRulesByFamily, markRulesFromState, markRuleSet, type MarkRule } from './mark-rules.js';
import { mayHoldSnat, snatRulesFromTable, snatRuleSet, snatSourcesFromState } from './snat-rules.js';
import { lbTableFromIpvs } from './ipvs-read-back.js';

export { planIpvs, ipvsStateFromTable, validateLbTable } from './ipvs-plan.js';
export type { IpvsOp, IpvsState, IpvsServiceState } from './ipvs-plan.js';
export { ipvsSysctls, ipvsSysctlTargets, ipvsTimeouts, DEFAULT_IPVS_TIMEOUTS } from './ipvs-tuning.js';
export { probeIpvs, IpvsUnavailableError, IpvsRequestError, IpvsClient } from './ipvs-client.js';
export type { EnterNamespace } from './ipvs-client.js';

/** Runs a command (in the backend's namespace) and feeds it `input` on stdin. */
export type CommandRunner = (argv: string[], input?: string) => Promise<{ stdout: string; stderr: string; code: number }>;

/** The IPVS operations the backend uses; IpvsClient implements it. */
export type IpvsKernel = Pick<
  IpvsClient,
  'listServices' | 'listDests' | 'addService' | 'updateService' | 'deleteService' | 'addDest' | 'updateDest' | 'deleteDest' | 'getTimeouts' | 'setTimeouts'
>;

export interface IpvsBackendOptions {
  /** The namespace's iptables writer (share the one the namespace's other rules go through). */
  iptables?: IptablesWriter;
  /**
   * Makes the namespace's ip6tables writer (family ipv6), called once, only when a v6 service needs marks or the
   * kernel holds v6 services to clean up after: a v4-only namespace never runs an ip6tables tool. Default: a
   * writer on `run`, else on the v4 writer's namespace.
   */
  iptables6?: () => IptablesWriter;
  /** Without `iptables`: runs iptables-save / iptables-restore in the same namespace as the IPVS socket. */
  run?: CommandRunner;
  /** Connection timeouts to enforce (defaults: tcp 900, tcpFin 120, udp 300). */
  timeouts?: Partial<IpvsTimeouts>;
  /** Receives one structured event per call (JSON-serialisable). */
  log?: (event: Record<string, unknown>) => void;
}

function hasV6(state: IpvsState): boolean {
  return state.services.some((s) => s.service.key.family === 'inet6');
}

/** IPVS-backed LbBackend for one network namespace. */
export class IpvsBackend implements LbBackend {
  readonly kind = 'ipvs' as const;
  private readonly timeouts: IpvsTimeouts;
  private readonly log: (event: Record<string, unknown>) => void;
  private readonly iptables: IptablesWriter;
  private readonly makeIptables6: () => IptablesWriter;
  private iptables6: IptablesWriter | undefined;
  /** Table ids by IPVS key, so read() gives back the names apply() was given. */
  private readonly names = new Map<string, string>();
  private timeoutsChecked = false;
  /** Whether SNAT rules were written (so an apply that needs none still removes them). */
  private snatWritten = false;
  /** Closes the socket open() created; null when the kernel handle was given from outside. */
  private release: (() => void) | null = null;
  /** apply/read/destroy run one at a time: interleaved diffs would replay each other's operations. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly kernel: IpvsKernel,
    opts: IpvsBackendOptions,
  ) {
    this.timeouts = ipvsTimeouts(opts.timeouts);
    this.log = opts.log ?? (() => {});
    if (!opts.iptables && !opts.run) throw new TypeError('IpvsBackend needs `iptables` (an IptablesWriter) or `run`');
    // A writer on `run` has no namespace of its own: `run` already runs inside the backend's namespace.
    this.iptables = opts.iptables ?? new IptablesWriter({ netns: null, run: opts.run! });
    const netns = this.iptables.netns;
    this.makeIptables6 = opts.iptables6 ?? (() => new IptablesWriter(opts.run ? { netns: null, run: opts.run, family: 'ipv6' } : { netns, family: 'ipv6' }));
  }

  /** Open the IPVS socket (inside the namespace when `enterNamespace` is given) and build a backend on it. */
  static async open(opts: IpvsBackendOptions & { enterNamespace?: EnterNamespace }): Promise<{ backend: IpvsBackend; close: () => void }> {
    const client = await IpvsClient.open(opts.enterNamespace);
    const backend = new IpvsBackend(client, opts);
    backend.release = () => client.close();
    return { backend, close: () => backend.close() };
  }

  /** Closes the IPVS socket this backend opened (if open() made it); IPVS services and mark rules stay. */
  close(): void {
    this.release?.();
    this.release = null;
  }

  /** What the kernel holds, as IPVS objects (all services in the namespace are meshnet's). */
  async readState(): Promise<IpvsState> {
    const services = await this.kernel.listServices();
    const out: IpvsState = { services: [] };
    for (const service of services) {
      const dests = (await this.kernel.listDests(service.key)).map(({ activeConns: _a, inactiveConns: _i, persistConns: _p, ...d }) => d);
      out.services.push({ service, dests });
    }
    return out;
  }

  private writer6(): IptablesWriter {
    return (this.iptables6 ??= this.makeIptables6());
  }

  /**
   * Our mark rules as the kernel holds them: ip6tables is read only when IPVS holds a v6 fwmark service, the only
   * kind a v6 mark feeds. Keyed by family and mark.
   */
  private async readMarks(state: IpvsState): Promise<Map<string, MarkRule>> {
    const out = new Map<string, MarkRule>();
    const put = (family: IpvsFamily, rules: MarkRule[]) => rules.forEach((r) => out.set(`${family}/${r.mark}`, r));
    put('inet', markRulesFromState(await this.iptables.read(['mangle'])));
    if (state.services.some((s) => s.service.key.kind === 'fwmark' && s.service.key.family === 'inet6')) {
      put('inet6', markRulesFromState(await this.writer6().read(['mangle'])));
    }
    return out;
  }

  /**
   * Makes ip6tables hold exactly the v6 marks. Skipped (no writer, no fork) while there are none, none were written
   * and IPVS holds no v6 service: marks go in after their services and leave before them, so a v6 mark an earlier
   * agent left always has its v6 service beside it.
   */
  private async applyMarks6(rules: MarkRule[], kernelHasV6: boolean, resync: boolean): Promise<boolean> {
    if (rules.length === 0 && !kernelHasV6 && !this.iptables6) return false;
    return (await this.writer6().apply(markRuleSet(rules), { resync })).changed;
  }

  /**
   * Makes the nat table hold exactly the SNAT rules, through the same writer as the marks. Skipped (no read, no fork)
   * while there are none, none were written and IPVS holds no service that could have one (mayHoldSnat).
   */
  private async applySnat(table: LbTable, current: IpvsState, resync: boolean): Promise<boolean> {
    const rules = snatRulesFromTable(table);
    if (rules.length === 0 && !this.snatWritten && !mayHoldSnat(current)) return false;
    const changed = (await this.iptables.apply(snatRuleSet(rules), { resync })).changed;
    this.snatWritten = rules.length > 0;
    return changed;
  }

  private async ensureTimeouts(): Promise<number> {
    if (this.timeoutsChecked) return 0;
    const have = await this.kernel.getTimeouts();
    let changes = 0;
    if (have.tcp !== this.timeouts.tcp || have.tcpFin !== this.timeouts.tcpFin || have.udp !== this.timeouts.udp) {
      await this.kernel.setTimeouts(this.timeouts);
      changes = 1;
    }
    this.log({ ...timeoutsLogEvent(this.timeouts), previous: have });
    this.timeoutsChecked = true;
    return changes;
  }

  private async runOp(op: IpvsOp): Promise<void> {
    switch (op.op) {
      case 'addService':
        return this.kernel.addService(op.service);
      case 'updateService':
        return this.kernel.updateService(op.service);
      case 'addDest':
        return this.kernel.addDest(op.service, op.dest);
      case 'updateDest':
        return this.kernel.updateDest(op.service, op.dest);
      case 'deleteDest':
        return this.kernel.deleteDest(op.service, op.dest);
      case 'deleteService':
        return this.kernel.deleteService(op.key);
    }
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Make IPVS and the mark chain match `table`, touching only what differs. */
  apply(table: LbTable): Promise<ApplyReport> {
    return this.serialize(() => this.applyNow(table));
  }

  /** The full resync: every apply already diffs against the kernel's whole IPVS state and prunes what the table lacks. */
  reconcile(table: LbTable): Promise<ApplyReport> {
    return this.apply(table);
  }

  /** Read IPVS services and mark rules back as a table (ids from the last apply, else derived from the key). */
  read(): Promise<LbTable> {
    return this.serialize(() => this.readNow());
  }

  /** Delete every IPVS service in the namespace and the mark chain. */
  destroy(): Promise<void> {
    return this.serialize(() => this.destroyNow());
  }

  private async applyNow(table: LbTable): Promise<ApplyReport> {
    const started = performance.now();
    validateLbTable(table);
    let changes = await this.ensureTimeouts();
    const desired = ipvsStateFromTable(table);
    const current = await this.readState();
    const ops = planIpvs(current, desired);
    const deletions = ops.filter((o) => o.op === 'deleteService');
    const rest = ops.filter((o) => o.op !== 'deleteService');
    for (const op of rest) await this.runOp(op);

    // Marks go in after the services they feed exist, and leave before those services go.
    const marks = markRulesByFamily(table);
    if ((await this.iptables.apply(markRuleSet(marks.inet))).changed) changes += 1;
    if (await this.applyMarks6(marks.inet6, hasV6(current), false)) changes += 1;
    // SNAT after the services and marks it rewrites for, and gone before a deleted service goes.
    if (await this.applySnat(table, current, false)) changes += 1;
    for (const op of deletions) await this.runOp(op);

    this.names.clear();
    table.services.forEach((vs, i) => this.names.set(serviceKeyId(desired.services[i]!.service.key), vs.id));
    changes += ops.length;
    const durationMs = performance.now() - started;
    this.log({ event: 'ipvs_apply', services: table.services.length, ops: ops.length, changes, durationMs: Math.round(durationMs * 10) / 10 });
    return { changes, durationMs };
  }

  private async readNow(): Promise<LbTable> {
    const state = await this.readState();
    const marks = await this.readMarks(state);
    const snat = mayHoldSnat(state) ? snatSourcesFromState(await this.iptables.read(['nat'])) : new Map<string, string>();
    return lbTableFromIpvs({ state, marks, snat, names: this.names });
  }

  private async destroyNow(): Promise<void> {
    const services = await this.kernel.listServices();
    await this.iptables.apply(markRuleSet([]), { resync: true });
    await this.applyMarks6([], services.some((s) => s.key.family === 'inet6'), true);
    await this.applySnat({ services: [] }, { services: services.map((service) => ({ service, dests: [] })) }, true);
    for (const s of services) await this.kernel.deleteService(s.key);
    this.names.clear();
    this.log({ event: 'ipvs_destroy' });
  }
}
