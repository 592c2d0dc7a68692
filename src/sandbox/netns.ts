import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { lastErrno, MNT_DETACH, MS_BIND, MS_REC, MS_SHARED, mount, umount2 } from './libc.js';
import { InvalidSandboxInputError, SyscallError } from './errors.js';
import { inFreshNetns } from './netns-switch.js';

/** Where meshnet bind-mounts its namespaces, as Docker keeps /var/run/docker/netns. */
export const DEFAULT_NETNS_DIR = '/run/meshnet/netns';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Rejects names that cannot be a file name under the namespace directory. */
export function validateNetnsName(name: string): void {
  if (!NAME.test(name)) {
    throw new InvalidSandboxInputError(
      `invalid namespace name ${JSON.stringify(name)}: use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
  }
}

function isMountPoint(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === dir);
}

/** nsfs's superblock magic (linux/magic.h): what statfs reports for a bind-mounted namespace file. */
const NSFS_MAGIC = 0x6e736673;

/**
 * True when `path` is a namespace bind mount. One statfs instead of scanning /proc/self/mountinfo,
 * which is O(mounts) per call and made every resync O(namespaces^2).
 */
function isNamespaceMount(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes `dir` a shared mount point, as iproute2 does for /run/netns, so that unmounting a
 * namespace here also unmounts the copies that task mount namespaces (slaves) hold; otherwise
 * a deleted namespace would live on, with its links, inside a task's mount namespace.
 */
function ensureSharedMountDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  if (!isMountPoint(dir) && mount(dir, dir, null, MS_BIND | MS_REC, null) !== 0) {
    throw new SyscallError('mount', lastErrno(), `${dir} (bind onto itself)`);
  }
  if (mount(null, dir, null, MS_SHARED | MS_REC, null) !== 0) {
    throw new SyscallError('mount', lastErrno(), `${dir} (make shared)`);
  }
}

/** A directory of bind-mounted network namespaces. */
export class NetnsDir {
  private prepared = false;

  constructor(readonly dir: string = DEFAULT_NETNS_DIR) {}

  /** Path of the namespace file for `name`. */
  path(name: string): string {
    validateNetnsName(name);
    return join(this.dir, name);
  }

  /** True when a namespace named `name` is mounted here. */
  exists(name: string): boolean {
    const p = this.path(name);
    return isNamespaceMount(p);
  }

  /** Creates (or adopts, when it exists) namespace `name`; returns its path. Its loopback starts down, as with `ip netns add`. */
  create(name: string): string {
    const target = this.path(name);
    if (this.exists(name)) return target;
    if (!this.prepared) {
      ensureSharedMountDir(this.dir);
      this.prepared = true;
    }
    closeSync(openSync(target, 'w'));
    try {
      inFreshNetns(() => {
        if (mount('/proc/thread-self/ns/net', target, null, MS_BIND, null) !== 0) {
          throw new SyscallError('mount', lastErrno(), target);
        }
      });
    } catch (err) {
      rmSync(target, { force: true });
      throw err;
    }
    return target;
  }

  /** Unmounts and removes namespace `name`; missing is fine (idempotent). */
  delete(name: string): void {
    const target = this.path(name);
    if (!existsSync(target)) return;
    if (isMountPoint(target) && umount2(target, MNT_DETACH) !== 0) {
      throw new SyscallError('umount2', lastErrno(), target);
    }
    rmSync(target, { force: true });
  }

  /** Deletes every namespace here, then the directory itself (and its own mount). */
  removeAll(): void {
    for (const name of this.list()) this.delete(name);
    if (existsSync(this.dir) && isMountPoint(this.dir) && umount2(this.dir, MNT_DETACH) !== 0) {
      throw new SyscallError('umount2', lastErrno(), this.dir);
    }
    rmSync(this.dir, { recursive: true, force: true });
    this.prepared = false;
  }

  /** Names of the namespaces mounted here. */
  list(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).filter((n) => isNamespaceMount(join(this.dir, n))).sort();
  }
}
