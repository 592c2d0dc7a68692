import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { execIn, type ExecResult } from '../../src/sandbox/exec.js';

/** A throwaway directory of namespaces for one test file, removed by `cleanup` even after failures. */
export class DnsLab {
  readonly base = `/run/meshnet-test-dns-${randomBytes(4).toString('hex')}`;
  readonly netns = new NetnsDir(`${this.base}/netns`);

  /** A namespace with lo up: 127.0.0.11 is then reachable through lo's 127.0.0.0/8 without adding it. */
  async namespace(name: string): Promise<string> {
    const path = this.netns.create(name);
    await execIn(path, ['ip', 'link', 'set', 'lo', 'up']);
    return path;
  }

  /** Writes a file under the lab directory and returns its path. */
  file(name: string, content: string): string {
    mkdirSync(`${this.base}/files`, { recursive: true });
    const path = `${this.base}/files/${name}`;
    writeFileSync(path, content);
    return path;
  }

  /**
   * Runs argv in the namespace with `resolvConf` bind-mounted over /etc/resolv.conf in a private
   * mount namespace, as a task sees it: glibc (getent, curl) reads the file of its mount namespace.
   */
  asTask(netnsPath: string, resolvConf: string, argv: string[], timeoutMs = 10_000): Promise<ExecResult> {
    const script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"';
    return execIn(netnsPath, ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, resolvConf, ...argv], {
      allowFailure: true,
      timeoutMs,
    });
  }

  /** Removes every namespace and the directory (the namespace dir is a mount point of its own). */
  async cleanup(): Promise<void> {
    this.netns.removeAll();
    rmSync(this.base, { recursive: true, force: true });
  }
}

/** `dig` inside a namespace; returns the answer lines' data and the status word. */
export async function dig(netnsPath: string, args: string[]): Promise<{ status: string; answers: string[]; flags: string; code: number }> {
  const r = await execIn(netnsPath, ['dig', '+time=2', '+tries=1', '@127.0.0.11', ...args], { allowFailure: true, timeoutMs: 10_000 });
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? 'NO_ANSWER';
  const flags = /;; flags: ([a-z ]+);/.exec(r.stdout)?.[1] ?? '';
  const section = r.stdout.split(';; ANSWER SECTION:')[1]?.split('\n\n')[0] ?? '';
  const answers = section
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).slice(4).join(' '));
  return { status, answers, flags, code: r.code };
}
