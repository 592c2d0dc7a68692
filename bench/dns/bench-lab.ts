import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { execIn } from '../../src/sandbox/exec.js';

/** Throwaway namespaces and files for one benchmark run, removed by `cleanup`. */
export class BenchLab {
  readonly base = `/run/meshnet-bench-dns-${randomBytes(4).toString('hex')}`;
  readonly netns = new NetnsDir(`${this.base}/netns`);

  /** A namespace with lo up. */
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

  /** Removes every namespace and the directory. */
  async cleanup(): Promise<void> {
    for (const name of this.netns.list()) this.netns.delete(name);
    await execIn(null, ['umount', '-l', `${this.base}/netns`], { allowFailure: true });
    rmSync(this.base, { recursive: true, force: true });
  }
}
