import { readdirSync, readFileSync } from 'node:fs';
import { DEFAULT_NETNS_DIR } from '../sandbox/netns.js';
import type { NodeLocation } from './node-view-reader.js';

/** A meshnet agent found running on this machine. */
export interface LocalAgent extends NodeLocation {
  pid: number;
  node: string;
  /** The store it follows (its --store, else MESHNET_STORE, else the default). */
  store: string | undefined;
}

function flag(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === name) return args[i + 1];
    if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
  }
  return undefined;
}

/**
 * An agent's location from its command line and environment (NUL-separated, as /proc holds them),
 * or null when the process is not `meshnet ... agent`. Pure. The host namespace of an agent that
 * runs in its own (`--host-netns self`, the default) is its process's: /proc/PID/ns/net.
 */
export function parseAgentProcess(pid: number, cmdline: string, environ: string): LocalAgent | null {
  const argv = cmdline.split('\0').filter((a) => a !== '');
  const at = argv.indexOf('agent');
  if (at < 0 || !argv.slice(0, at).some((a) => /(^|\/)(main\.js|meshnet)$/.test(a))) return null;
  const global = argv.slice(0, at);
  const own = argv.slice(at + 1);
  const node = flag(own, '--name');
  if (!node) return null;
  const env = new Map(environ.split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
  const hostNetns = flag(own, '--host-netns');
  return {
    pid,
    node,
    store: flag(global, '--store') ?? env.get('MESHNET_STORE'),
    hostNetns: hostNetns === undefined || hostNetns === 'self' ? `/proc/${pid}/ns/net` : hostNetns,
    netnsDir: flag(own, '--netns-dir') ?? DEFAULT_NETNS_DIR,
  };
}

/**
 * Every meshnet agent running on this machine (one on a real node; one per host in a lab), read
 * from /proc. Processes that vanish or cannot be read meanwhile are skipped.
 */
export function discoverLocalAgents(): LocalAgent[] {
  const out: LocalAgent[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes('agent')) continue;
      const agent = parseAgentProcess(Number(entry), cmdline, readFileSync(`/proc/${entry}/environ`, 'utf8'));
      if (agent) out.push(agent);
    } catch {
      // Gone, or not ours to read.
    }
  }
  return out.sort((a, b) => a.pid - b.pid);
}
