import koffi from 'koffi';
import { closeOnExecAll, markSocketCloseOnExec } from '../../runtime/process-fds.js';
import { withNetns } from '../../sandbox/netns-switch.js';
import { AF_NETLINK, close, NETLINK_NETFILTER, SOCK_CLOEXEC, SOCK_RAW, socket, socketErrno } from '../../sandbox/libc-sockets.js';
import { NftBackendError } from './errors.js';

/**
 * libnftables (the library `nft` itself is built on) called in-process through koffi: one nft
 * context per namespace instead of one `nft -i` process per namespace. The context's netlink
 * socket is opened by nft_ctx_new (libnftables 1.0.6 opens it eagerly, checked by
 * test/vip/libnftables.test.ts), so creating the context inside the namespace binds it there for
 * good: later calls may run on any thread, in any namespace, including koffi's async calls on
 * the libuv pool, which keep multi-second loads off the event loop.
 */

/** libnftables.so.1 could not be loaded: the operator installs the Debian package. */
export class LibnftablesMissingError extends NftBackendError {
  constructor(reason: string) {
    super(
      'LIBNFTABLES_MISSING',
      `cannot load libnftables.so.1 (${reason}): install it with "apt-get install libnftables1" (Debian/Ubuntu; it comes with the nftables package), or run the agent with --lb-backend ipvs`,
    );
  }
}

/** An nft context could not be created (no netlink socket in that namespace, or out of file descriptors). */
export class NftContextError extends NftBackendError {
  constructor(netns: string | null, reason: string) {
    super('NFT_CONTEXT_FAILED', `cannot open an nftables netlink socket${netns ? ` in ${netns}` : ''}: ${reason} (is the namespace still there, and the process below its open-file limit?)`);
  }
}

/** A command buffer nft refused: `nftMessage` is nft's own error text, nothing of it was applied. */
export class NftCommandError extends NftBackendError {
  constructor(readonly nftMessage: string) {
    super('NFT_COMMAND_FAILED', nftMessage.trim() || 'nft failed without a message');
  }
}

type Ctx = unknown;
interface Binding {
  ctxNew(flags: number): Ctx;
  bufferOutput(ctx: Ctx): number;
  bufferError(ctx: Ctx): number;
  outputBuffer(ctx: Ctx): string;
  errorBuffer(ctx: Ctx): string;
  setOutputFlags(ctx: Ctx, flags: number): void;
  runSync(ctx: Ctx, buf: string): number;
  runAsync(ctx: Ctx, buf: string, cb: (err: unknown, rc: number) => void): void;
  ctxFreeAsync(ctx: Ctx, cb: (err: unknown) => void): void;
}

const NFT_CTX_DEFAULT = 0;
const NFT_CTX_OUTPUT_JSON = 1 << 4;

let binding: Binding | null = null;
let freedListener: (() => void) | null = null;

/**
 * Calls `listener` after each context is freed (null: no one). A context that loaded or listed a big
 * table held nft's cache of it in malloc'd memory: whoever owns the process's malloc may want to hand
 * it back then (the agent trims its heap), rather than at some later, unrelated moment.
 */
export function onNftContextFreed(listener: (() => void) | null): void {
  freedListener = listener;
}

/** Loads the library on first use, so machines that only use IPVS never need it. */
function lib(): Binding {
  if (binding) return binding;
  let so: ReturnType<typeof koffi.load>;
  try {
    so = koffi.load('libnftables.so.1');
  } catch (err) {
    throw new LibnftablesMissingError((err as Error).message);
  }
  koffi.opaque('nft_ctx');
  const run = so.func('int nft_run_cmd_from_buffer(nft_ctx *ctx, const char *buf)');
  const free = so.func('void nft_ctx_free(nft_ctx *ctx)');
  binding = {
    ctxNew: so.func('nft_ctx *nft_ctx_new(uint32_t flags)'),
    ctxFreeAsync: (ctx, cb) => free.async(ctx, cb),
    bufferOutput: so.func('int nft_ctx_buffer_output(nft_ctx *ctx)'),
    bufferError: so.func('int nft_ctx_buffer_error(nft_ctx *ctx)'),
    outputBuffer: so.func('const char *nft_ctx_get_output_buffer(nft_ctx *ctx)'),
    errorBuffer: so.func('const char *nft_ctx_get_error_buffer(nft_ctx *ctx)'),
    setOutputFlags: so.func('void nft_ctx_output_set_flags(nft_ctx *ctx, unsigned int flags)'),
    runSync: run,
    runAsync: (ctx, buf, cb) => run.async(ctx, buf, cb),
  };
  return binding;
}

/**
 * libnftables calls exit() when nft_ctx_new cannot open its netlink socket (netlink_init_error),
 * which would end the agent: open and close one first, so the usual causes (EMFILE, a namespace
 * without nf_tables) become a typed error instead.
 */
function probeNetlink(netns: string | null): number {
  const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) throw new NftContextError(netns, `socket(AF_NETLINK, NETLINK_NETFILTER) failed with errno ${socketErrno()}`);
  close(fd);
  // The lowest free number: the one nft_ctx_new's own socket gets next, unless another thread takes it first.
  return fd;
}

/**
 * One nft context bound to one network namespace. Calls on one context must not overlap (the
 * caller serialises them); close() waits for an async call in flight before freeing the context.
 */
export class NftContext {
  private ctx: Ctx | null;
  private inFlight = 0;
  private closing = false;

  private constructor(
    private readonly b: Binding,
    ctx: Ctx,
  ) {
    this.ctx = ctx;
  }

  /** Opens a context whose socket lives in `netns` (null: the namespace this thread is in). */
  static open(netns: string | null): NftContext {
    const b = lib();
    let marked = false;
    const ctx = withNetns(netns, () => {
      const next = probeNetlink(netns);
      const made = b.ctxNew(NFT_CTX_DEFAULT);
      // libnftables opens its netlink socket without close-on-exec: every task started later would inherit it.
      marked = markSocketCloseOnExec(next);
      return made;
    });
    if (!ctx) throw new NftContextError(netns, 'nft_ctx_new returned NULL');
    // Another thread took that number first: look at every descriptor (about 1.4 ms at 600 of them).
    if (!marked) closeOnExecAll();
    // Output and errors go to buffers we read after each call, never to the agent's stdout/stderr.
    b.bufferOutput(ctx);
    b.bufferError(ctx);
    return new NftContext(b, ctx);
  }

  private live(): Ctx {
    if (!this.ctx || this.closing) throw new NftCommandError('the nft context was closed');
    return this.ctx;
  }

  /** Runs `commands` (one atomic transaction) on this thread; returns nft's output, throws NftCommandError. */
  run(commands: string, opts: { json?: boolean } = {}): string {
    const ctx = this.live();
    if (opts.json) this.b.setOutputFlags(ctx, NFT_CTX_OUTPUT_JSON);
    try {
      const rc = this.b.runSync(ctx, commands);
      return this.collect(ctx, rc);
    } finally {
      if (opts.json) this.b.setOutputFlags(ctx, 0);
    }
  }

  /** As run(), on a libuv pool thread: for loads and dumps that take long enough to stall the event loop. */
  runAsync(commands: string, opts: { json?: boolean } = {}): Promise<string> {
    const ctx = this.live();
    if (opts.json) this.b.setOutputFlags(ctx, NFT_CTX_OUTPUT_JSON);
    this.inFlight++;
    return new Promise<string>((resolve, reject) => {
      this.b.runAsync(ctx, commands, (err, rc) => {
        this.inFlight--;
        try {
          if (err) throw new NftCommandError(`libnftables call failed: ${String(err)}`);
          resolve(this.collect(ctx, rc));
        } catch (e) {
          reject(e);
        } finally {
          if (opts.json) this.b.setOutputFlags(ctx, 0);
          if (this.closing && this.inFlight === 0) this.free();
        }
      });
    });
  }

  private collect(ctx: Ctx, rc: number): string {
    const out = this.b.outputBuffer(ctx);
    const err = this.b.errorBuffer(ctx);
    if (rc !== 0) throw new NftCommandError(err || out);
    return out;
  }

  /**
   * Frees the context and its socket (when the call in flight, if any, returns); the kernel state
   * stays. On the libuv pool: a context that loaded or listed a big table holds nft's cache of it,
   * and freeing that takes as long as building it.
   */
  close(): void {
    if (!this.ctx || this.closing) return;
    this.closing = true;
    if (this.inFlight === 0) this.free();
  }

  private free(): void {
    const ctx = this.ctx;
    this.ctx = null;
    if (ctx) this.b.ctxFreeAsync(ctx, () => freedListener?.());
  }
}
