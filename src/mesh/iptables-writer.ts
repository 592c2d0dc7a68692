import { realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { execIn, type ExecResult } from '../sandbox/exec.js';
import { NftGenerations } from '../sandbox/nft-generation.js';
import { IptablesCommandError } from './errors.js';
import { renderRestore, ruleSetState, tablesOf } from './iptables-render.js';
import type { AddressFamily } from './iptables-family.js';
import type { IptablesRuleSet, IptablesTable } from './iptables-ruleset.js';
import { saveTableIn } from './iptables-batch-save.js';
import { parseIptablesSave, type IptablesState } from './iptables-save-parse.js';

/**
 * Which iptables tools to run. `auto` uses `iptables-restore`/`iptables-save` as installed
 * (the Debian alternative: nf_tables here); `nft` and `legacy` pin one backend, for hosts
 * where the other one holds the rules that matter (a host's Docker, say).
 */
export type IptablesFlavor = 'auto' | 'nft' | 'legacy';


/** Runs a command in the writer's namespace with `input` on stdin; resolves with the exit code instead of throwing. */
export type IptablesRunner = (argv: string[], input?: string) => Promise<ExecResult>;

export interface IptablesWriterOptions {
  /** The namespace written (null: the one this process runs in). */
  netns: string | null;
  flavor?: IptablesFlavor;
  /**
   * Which family it owns (default ipv4); `ipv6` runs the ip6tables tools. A namespace has one writer per family,
   * and the ipv6 one is created only when a network asks for v6, so a v4-only host never runs an ip6tables tool.
   */
  family?: AddressFamily;
  /** How commands run; default: execIn inside `netns`. Tests pass a fake that counts forks. */
  run?: IptablesRunner;
  /** Where writes and repairs are reported; none: silent (no pino is loaded, as in the IPVS test VM). */
  log?: Logger;
  /**
   * The namespace's nf_tables generation (sandbox/nft-generation.ts), shared with its load-balancing table's
   * backend. Default: the kernel's when the real tools run and are iptables-nft; else never known (legacy
   * rules do not move it), and every resync reads.
   */
  generations?: NftGenerations;
}

export interface IptablesApplyOptions {
  /** Read the kernel instead of trusting what was last applied, and repair any drift (the periodic full pass). */
  resync?: boolean;
  /**
   * A light check: read and repair only when the namespace's nf_tables generation shows someone else's
   * commit since this owner's rules were known. A writer that cannot know the generation (legacy iptables)
   * trusts what it applied, as a plain apply does: no fork either way when nothing changed.
   */
  verify?: boolean;
}

/** What an apply did. */
export interface IptablesApplyResult {
  /** True when a transaction was written. */
  changed: boolean;
  /** The transaction fed to iptables-restore, or null. */
  script: string | null;
  /** True when the kernel was read (first apply, resync, or a retry after a failed write). */
  readKernel: boolean;
  /** What the namespace held before, as read or as last applied: at least this owner's chains and rules. */
  previous: IptablesState;
}

interface Applied {
  key: string;
  state: IptablesState;
  /** The nf_tables generation at which the kernel held exactly `state` for this owner (null: not known). */
  generation: number | null;
}

const TIMEOUT_MS = 30_000;

/** Whether `tool` (found in PATH) is iptables-nft: Debian's alternatives end in xtables-nft-multi or xtables-legacy-multi. */
function toolIsNft(tool: string): boolean {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    try {
      return /nft/.test(realpathSync(join(dir, tool)));
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/**
 * The one writer of iptables in one namespace, for every owner there (the mesh's host or task
 * rules, the IPVS mark rules): each owner is a rule set named by its comment. It remembers what
 * it last applied per owner, so an apply of an unchanged set forks nothing, and a changed one
 * forks exactly one `iptables-restore --noflush` (atomic per run). The kernel is read with
 * `iptables-save` only on an owner's first apply, on `{ resync: true }`, and once more when a
 * write rendered from memory fails (someone changed the namespace behind our back).
 */
export class IptablesWriter {
  readonly netns: string | null;
  readonly family: AddressFamily;
  private readonly flavor: IptablesFlavor;
  private readonly run: IptablesRunner;
  /** Whether this writer runs the real tools (no runner given): only then can warmMany read for it in a batch. */
  private readonly realTools: boolean;
  private readonly log: Logger | undefined;
  private readonly applied = new Map<string, Applied>();
  /** One transaction at a time: renders from memory assume the previous write landed. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The namespace's nf_tables generation, which lets a resync skip iptables-save when nothing committed since. */
  readonly generations: NftGenerations;
  /** The tables last read and the generation they were read at (null: none, or no generation to tell). */
  private lastRead: { generation: number; tables: Map<IptablesTable, Map<string, string[]> | null> } | null = null;

  constructor(opts: IptablesWriterOptions) {
    this.netns = opts.netns;
    this.flavor = opts.flavor ?? 'auto';
    this.family = opts.family ?? 'ipv4';
    const netns = opts.netns;
    this.run = opts.run ?? ((argv, input) => execIn(netns, argv, { input: input ?? '', allowFailure: true, timeoutMs: TIMEOUT_MS }));
    this.log = opts.log;
    this.realTools = opts.run === undefined;
    // A fake runner's rules are not the kernel's: its generation is unknown unless the test gives one.
    const real = opts.run === undefined && (this.flavor === 'nft' || (this.flavor === 'auto' && toolIsNft(this.tool('restore'))));
    this.generations = opts.generations ?? (real ? NftGenerations.of(netns) : NftGenerations.unknown());
  }

  /** Makes the namespace hold exactly `desired` for its owner (`desired.comment`), touching nothing else. */
  apply(desired: IptablesRuleSet, opts: IptablesApplyOptions = {}): Promise<IptablesApplyResult> {
    return this.serialize(() => this.applyNow(desired, opts.resync === true || (opts.verify === true && this.moved(desired.comment))));
  }

  /** Whether someone else committed in the namespace since this owner's rules were known (false when that cannot be told). */
  private moved(owner: string): boolean {
    const known = this.applied.get(owner)?.generation ?? null;
    return known !== null && this.generations.since(known) === null;
  }

  /**
   * Reads `tables` ahead when one of `owners` is new to this writer, so their first apply (which reads
   * them anyway) finds the read still current and forks nothing: a caller can then read many namespaces
   * at once instead of one after the other (an agent adopting every task after a restart). Does nothing
   * where no generation can tell that a read is still current (legacy iptables).
   */
  async warm(owners: readonly string[], tables: readonly IptablesTable[]): Promise<void> {
    if (owners.every((o) => this.applied.has(o)) || this.generations.current() === null) return;
    await this.serialize(() => this.readNow(tables));
  }

  /**
   * warm() for many writers and one table at once: two processes read every namespace that needs it
   * (saveTableIn), and each read is kept only if its namespace's generation did not move while it was
   * read. Writers given their own runner (tests) warm one by one through it.
   */
  static async warmMany(writers: readonly IptablesWriter[], owners: readonly string[], table: IptablesTable): Promise<void> {
    const cold = writers.filter((w) => !owners.every((o) => w.applied.has(o)));
    const batched = new Set(cold.filter((w) => w.realTools && w.netns !== null));
    for (const w of cold) if (!batched.has(w)) await w.warm(owners, [table]).catch(() => undefined);
    // One batch per tool (iptables-nft-save, ip6tables-save, ...): writers of one agent share one.
    const byTool = new Map<string, { writer: IptablesWriter; generation: number }[]>();
    for (const w of batched) {
      const generation = w.generations.current();
      if (generation === null) continue;
      const tool = w.tool('save');
      let list = byTool.get(tool);
      if (!list) byTool.set(tool, (list = []));
      list.push({ writer: w, generation });
    }
    for (const [tool, list] of byTool) {
      const texts = await saveTableIn(list.map((x) => x.writer.netns!), tool, table);
      for (const { writer, generation } of list) {
        const text = texts.get(writer.netns!);
        if (text !== null && text !== undefined) await writer.serialize(async () => writer.seed(table, text, generation));
      }
    }
  }

  /** Keeps `text` (iptables-save of `table`, read when the namespace was at `generation`) if it still is. */
  private seed(table: IptablesTable, text: string, generation: number): void {
    if (this.generations.current() !== generation) return;
    const tables = this.lastRead?.generation === generation ? this.lastRead.tables : new Map<IptablesTable, Map<string, string[]> | null>();
    tables.set(table, parseIptablesSave(text).get(table) ?? null);
    this.lastRead = { generation, tables };
  }

  /** Reads the given tables as iptables-save prints them (always forks: one iptables-save per table). */
  read(tables: readonly IptablesTable[]): Promise<IptablesState> {
    return this.serialize(() => this.readNow(tables));
  }

  /**
   * Deletes the UDP conntrack entries to these destination ports. UDP has no connection end: a
   * client that keeps sending would stay DNATed by its old entry after a port's rule is gone.
   */
  async forgetUdpFlows(ports: readonly number[]): Promise<void> {
    for (const port of ports) {
      const argv = ['conntrack', '-D', ...(this.family === 'ipv6' ? ['-f', 'ipv6'] : []), '-p', 'udp', '--orig-port-dst', String(port)];
      const r = await this.run(argv);
      // Exit code 1 only means there was nothing to delete.
      if (r.code > 1) throw new IptablesCommandError(argv, this.netns, r.code, r.stderr);
    }
    if (ports.length > 0) this.log?.info({ event: 'conntrack.udp_flushed', netns: this.netns, ports });
  }

  /** Drops what this writer remembers (the namespace was recreated): the next apply reads the kernel. */
  forget(): void {
    this.applied.clear();
    this.lastRead = null;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private tool(name: 'save' | 'restore'): string {
    const base = this.family === 'ipv6' ? 'ip6tables' : 'iptables';
    return this.flavor === 'auto' ? `${base}-${name}` : `${base}-${this.flavor}-${name}`;
  }

  private async readNow(tables: readonly IptablesTable[]): Promise<IptablesState> {
    // Tables read at the generation the namespace is still at hold what iptables-save would print
    // again: a second owner's first apply (a task's resolver NAT after its redirects, as every task
    // is adopted after a restart) forks nothing.
    const generation = this.generations.current();
    const seen = generation !== null && this.lastRead?.generation === generation ? this.lastRead.tables : new Map<IptablesTable, Map<string, string[]> | null>();
    const state: IptablesState = new Map();
    for (const table of tables) {
      if (!seen.has(table)) {
        const argv = [this.tool('save'), '-t', table];
        const r = await this.run(argv);
        if (r.code !== 0) throw new IptablesCommandError(argv, this.netns, r.code, r.stderr);
        seen.set(table, parseIptablesSave(r.stdout).get(table) ?? null);
      }
      const parsed = seen.get(table);
      if (parsed) state.set(table, parsed);
    }
    this.lastRead = generation === null ? null : { generation, tables: seen };
    return state;
  }

  private async restore(script: string): Promise<void> {
    const argv = [this.tool('restore'), '--noflush', '-w', '5'];
    const r = await this.run(argv, script);
    if (r.code !== 0) throw new IptablesCommandError(argv, this.netns, r.code, r.stderr);
  }

  private async applyNow(desired: IptablesRuleSet, resync: boolean): Promise<IptablesApplyResult> {
    const owner = desired.comment;
    const key = JSON.stringify(desired);
    const last = this.applied.get(owner);
    if (!resync && last?.key === key) return { changed: false, script: null, readKernel: false, previous: last.state };
    // A resync that finds the namespace's nf_tables moved only by meshnet's own commits since this owner's
    // rules were known: iptables-save would print what is remembered. No fork.
    if (resync && last?.key === key) {
      const now = this.generations.since(last.generation);
      if (now !== null) {
        last.generation = now;
        return { changed: false, script: null, readKernel: false, previous: last.state };
      }
    }

    let readKernel = resync || last === undefined;
    let known = readKernel ? this.generations.current() : this.generations.since(last?.generation ?? null);
    let previous = readKernel ? await this.readNow(tablesOf(desired)) : last!.state;
    let script = renderRestore(desired, previous);
    // Forget first: if the write fails, what the kernel holds is unknown until read again.
    this.applied.delete(owner);
    if (script !== null) {
      try {
        known = await this.restoreTracked(script, known);
      } catch (err) {
        if (readKernel) throw err;
        // Rendered from memory, and the kernel disagreed (a rule deleted by hand, a flushed table): read and retry once.
        this.log?.warn({ event: 'iptables.drift', netns: this.netns, owner, error: (err as Error).message });
        readKernel = true;
        known = this.generations.current();
        previous = await this.readNow(tablesOf(desired));
        script = renderRestore(desired, previous);
        if (script !== null) known = await this.restoreTracked(script, known);
      }
    }
    this.applied.set(owner, { key, state: ruleSetState(desired), generation: known });
    if (script !== null) {
      this.log?.info({ event: 'iptables.applied', netns: this.netns, owner, resync, readKernel, lines: script.split('\n').length - 1 });
    }
    return { changed: script !== null, script, readKernel, previous };
  }

  /**
   * Writes `script`, and returns the generation at which the kernel is known to hold what this owner
   * now remembers: the one after the write, when the namespace was at `known` just before it and the
   * write's own commits (one per table, each COMMIT line) were the only ones since; else null.
   */
  private async restoreTracked(script: string, known: number | null): Promise<number | null> {
    const before = this.generations.current();
    await this.restore(script);
    const after = this.generations.current();
    const sole = this.generations.recordOwn(before, after, script.match(/^COMMIT$/gm)?.length ?? 0);
    return sole && known === before ? after : null;
  }
}
