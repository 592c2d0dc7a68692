import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { execIn } from '../../src/sandbox/exec.js';
import { NftCommandError, NftContext, onNftContextFreed } from '../../src/vip/nft/libnftables.js';
import { libnftablesIo } from '../../src/vip/dual-stack-lb.js';
import { NftGenerations } from '../../src/sandbox/nft-generation.js';

// Two throwaway namespaces: a context opened in one must write there, and never anywhere else,
// whichever thread (the event loop's or a libuv pool thread's) runs its commands.
let lab: Lab;
let a: string;
let b: string;

async function tables(ns: string): Promise<string[]> {
  const r = await execIn(ns, ['nft', 'list', 'tables']);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** Counts freed contexts from now until stop(); `reach(n)` waits until n have been freed. */
function watchFrees(): { count: () => number; reach: (n: number) => Promise<void>; stop: () => void } {
  let freed = 0;
  let wake: () => void = () => undefined;
  onNftContextFreed(() => {
    freed++;
    wake();
  });
  return {
    count: () => freed,
    reach: async (n) => {
      while (freed < n) await new Promise<void>((r) => (wake = r));
    },
    stop: () => onNftContextFreed(null),
  };
}

beforeAll(async () => {
  lab = await Lab.create(0, { tag: 'libnft' });
  a = lab.netns('a');
  b = lab.netns('b');
});

afterAll(async () => {
  await lab?.destroy();
});

describe('libnftables context', () => {
  it('stays bound to the namespace it was opened in, for calls on the event loop and on the pool', async () => {
    const ctx = NftContext.open(a);
    try {
      ctx.run('add table ip sync_probe'); // this thread is back in its own namespace here
      await ctx.runAsync('add table ip async_probe'); // a libuv pool thread, never switched
      expect(await tables(a)).toEqual(['table ip async_probe', 'table ip sync_probe']);
      expect(await tables(b)).toEqual([]);
      expect(ctx.run('list tables')).toContain('table ip async_probe');
    } finally {
      ctx.close();
    }
  });

  it('tells the freed-context listener once the context is freed, also when a call was in flight', async () => {
    const frees = watchFrees();
    try {
      const ctx = NftContext.open(a);
      const listing = ctx.runAsync('list tables');
      ctx.close();
      expect(frees.count()).toBe(0);
      await listing;
      await frees.reach(1);
      expect(frees.count()).toBe(1);
    } finally {
      frees.stop();
    }
  });

  it("raises nft's own message and applies nothing of a failed transaction", async () => {
    const ctx = NftContext.open(b);
    try {
      const err = (() => {
        try {
          ctx.run('add table ip half\nadd element ip half absent_set { 1 }');
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(NftCommandError);
      expect((err as NftCommandError).nftMessage).toMatch(/No such file or directory/);
      expect(await tables(b)).toEqual([]);
      await expect(ctx.runAsync('list table ip nowhere')).rejects.toThrow(/No such file or directory/);
    } finally {
      ctx.close();
    }
  });

  it('lists as JSON on request, and text again afterwards', () => {
    const ctx = NftContext.open(b);
    try {
      ctx.run('add table ip json_probe');
      expect(JSON.parse(ctx.run('list tables', { json: true })).nftables.some((o: { table?: { name: string } }) => o.table?.name === 'json_probe')).toBe(true);
      expect(ctx.run('list tables')).toContain('table ip json_probe');
      ctx.run('delete table ip json_probe');
    } finally {
      ctx.close();
    }
  });

  it('can be closed while a call runs on the pool: the call finishes, later calls are refused', async () => {
    const ctx = NftContext.open(a);
    const pending = ctx.runAsync('list tables');
    ctx.close();
    expect(await pending).toContain('table ip');
    expect(() => ctx.run('list tables')).toThrow(/closed/);
  });

  it('frees the v6 context once idle, and opens a new one for the next write', async () => {
    const frees = watchFrees();
    const io = libnftablesIo(b, undefined, 50);
    try {
      // A dual-stack node has one such context per task namespace, each holding nft's cache (~0.7 MB).
      await io.run('add table ip6 meshnet6\n');
      await frees.reach(1);
      expect(await io.exists()).toBe(true);
      await frees.reach(2);
      await io.run('delete table ip6 meshnet6\n');
      expect(await tables(b)).toEqual([]);
    } finally {
      io.close();
      frees.stop();
    }
  });

  it("records the v6 table's writes as the namespace's own commits, and only those", async () => {
    // Shared with the namespace's v4 table and iptables writer: a v6 write they took for someone else's
    // commit would make the next check rebuild the v4 table and re-read the iptables ones.
    const generations = NftGenerations.of(b);
    const known = generations.current()!;
    const io = libnftablesIo(b, generations);
    try {
      await io.run('add table ip6 meshnet6_probe\n');
      expect(generations.current()).toBe(known + 1);
      expect(generations.since(known)).toBe(known + 1);
      await execIn(b, ['nft', 'add', 'table', 'ip6', 'someone_else']);
      expect(generations.since(known)).toBeNull();
    } finally {
      io.close();
      await execIn(b, ['nft', 'delete table ip6 meshnet6_probe; delete table ip6 someone_else'], { allowFailure: true });
    }
    expect(await tables(b)).toEqual([]);
  });
});
