/** Errors of the sandbox layer: each names the object, the operation and what the operator can do. */

/** Base class: `code` is stable for programs, `message` is for people. */
export class SandboxError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A kernel request over rtnetlink failed; `errno` is the kernel's name for why (EEXIST, ENODEV, ...). */
export class NetlinkError extends SandboxError {
  constructor(
    readonly errno: string,
    readonly operation: string,
    readonly object: string,
    hint?: string,
  ) {
    super(`NETLINK_${errno}`, `${operation} ${object} failed: ${errno}${hint ? ` (${hint})` : ''}`);
  }
}

/** A namespace path or name does not exist. */
export class NamespaceNotFoundError extends SandboxError {
  constructor(readonly path: string) {
    super('NETNS_NOT_FOUND', `network namespace ${path} does not exist: create it first or check the name`);
  }
}

/** A write aimed at the namespace the agent itself runs in, which was not configured as the host namespace. */
export class HostNamespaceRefusedError extends SandboxError {
  constructor(operation: string) {
    super(
      'HOST_NETNS_REFUSED',
      `refusing to ${operation} in the namespace meshnet itself runs in; ` +
        'pass it explicitly as the host namespace (agent --host-netns) if that is really intended',
    );
  }
}

/** Input that can never be applied (bad name, bad address, out-of-range number). */
export class InvalidSandboxInputError extends SandboxError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/** A system call made through libc failed. */
export class SyscallError extends SandboxError {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    target: string,
  ) {
    super(`SYSCALL_${syscall.toUpperCase()}`, `${syscall}(${target}) failed with errno ${errno}`);
  }
}

const errnoHints: Record<string, string> = {
  EEXIST: 'an object with that name or key already exists',
  ENODEV: 'the link does not exist (or was moved to another namespace)',
  ENOENT: 'no such object',
  ESRCH: 'no such route',
  EPERM: 'not permitted: meshnet must run as root',
  EADDRNOTAVAIL: 'address not configured on that link',
  EINVAL: 'the kernel rejected the arguments',
  EBUSY: 'the object is in use',
  ENETUNREACH: 'no route to the gateway: add the address on the link first',
  EOPNOTSUPP: 'this kernel does not support that operation',
};

/** Turns the netlink package's bare error strings ("Request rejected: ENODEV") into a typed error. */
export function toNetlinkError(err: unknown, operation: string, object: string): NetlinkError {
  const text = err instanceof Error ? err.message : String(err);
  const match = /\b(E[A-Z0-9]{2,})\b/.exec(text);
  const errno = match?.[1] ?? 'EUNKNOWN';
  return new NetlinkError(errno, operation, object, errnoHints[errno] ?? (match ? undefined : text));
}
