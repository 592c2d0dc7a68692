import { execFileSync } from 'node:child_process';
import { TaskError } from './errors.js';

/**
 * Docker's --user: `UID`, `NAME`, `UID:GID`, `NAME:GROUP` (and mixes). A name is a POSIX portable
 * user or group name (letters, digits, '.', '_', '-', not starting with '-'), at most 32 characters.
 */
export const USER_SPEC = /^([0-9]{1,10}|[A-Za-z_][A-Za-z0-9._-]{0,31})(?::([0-9]{1,10}|[A-Za-z_][A-Za-z0-9._-]{0,31}))?$/;

/** The rule --user follows, for error messages. */
export const USER_RULE = 'UID, NAME, UID:GID or NAME:GROUP (as docker run --user), names of letters, digits, ".", "_" or "-"';

// 2^32-1 is (uid_t)-1, "no change" to setresuid: never a real id.
const MAX_ID = 4_294_967_294;

/** A --user value split into its user and optional group parts. */
export interface UserSpec {
  user: string;
  group?: string;
}

/** Splits a --user value; undefined when it does not follow USER_RULE. */
export function parseUserSpec(value: string): UserSpec | undefined {
  const m = USER_SPEC.exec(value);
  if (!m) return undefined;
  for (const part of [m[1], m[2]]) if (part !== undefined && /^[0-9]+$/.test(part) && Number(part) > MAX_ID) return undefined;
  return m[2] === undefined ? { user: m[1]! } : { user: m[1]!, group: m[2] };
}

/** One line of the passwd database. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One line of the group database. */
export interface GroupEntry {
  name: string;
  gid: number;
}

/** Looks accounts up by name or by number, as `getent` does. */
export interface AccountLookup {
  passwd(key: string): PasswdEntry | undefined;
  group(key: string): GroupEntry | undefined;
}

/** Ids a task process runs with. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** True when the user has a passwd entry: its supplementary groups come from the group database. */
  initGroups: boolean;
  /** $HOME for the task: the passwd entry's home, `/` without one. */
  home: string;
}

/** The user named by a task's --user does not exist on this node. */
export class UnknownUserError extends TaskError {
  constructor(message: string) {
    super('TASK_UNKNOWN_USER', message);
  }
}

const isNumber = (s: string): boolean => /^[0-9]+$/.test(s);

/**
 * Resolves a --user value against this node's accounts, with Docker's rules: a number needs no
 * passwd entry (its group is then 0 unless given), a name must exist; a group defaults to the
 * user's primary group. Throws UnknownUserError naming what is missing and what to do.
 */
export function resolveUser(value: string, accounts: AccountLookup): ResolvedUser {
  const spec = parseUserSpec(value);
  if (!spec) throw new UnknownUserError(`invalid user ${JSON.stringify(value)}: use ${USER_RULE}`);
  const entry = accounts.passwd(spec.user);
  if (!entry && !isNumber(spec.user)) {
    throw new UnknownUserError(`user ${JSON.stringify(spec.user)} does not exist on this node: create it (useradd), or give the service a numeric --user UID:GID`);
  }
  const uid = entry?.uid ?? Number(spec.user);
  let gid = entry?.gid ?? 0;
  if (spec.group !== undefined) {
    const group = accounts.group(spec.group);
    if (!group && !isNumber(spec.group)) {
      throw new UnknownUserError(`group ${JSON.stringify(spec.group)} does not exist on this node: create it (groupadd), or give the service a numeric --user UID:GID`);
    }
    gid = group?.gid ?? Number(spec.group);
  }
  return { uid, gid, initGroups: entry !== undefined, home: entry?.home ?? '/' };
}

/** Parses a `getent passwd` line (name:password:uid:gid:gecos:home:shell). */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 7 || !isNumber(f[2]!) || !isNumber(f[3]!)) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
}

/** Parses a `getent group` line (name:password:gid:members). */
export function parseGroupLine(line: string): GroupEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 3 || !isNumber(f[2]!)) return undefined;
  return { name: f[0]!, gid: Number(f[2]) };
}

function getent(database: 'passwd' | 'group', key: string): string | undefined {
  try {
    return execFileSync('getent', [database, key], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    // exit 2: no such entry; anything else (getent missing) also means we cannot name the account
    return undefined;
  }
}

/**
 * This node's accounts through `getent`, so that users from NSS sources (LDAP, sssd) resolve as
 * they do for every other program on the host, not only those in /etc/passwd.
 */
export const systemAccounts: AccountLookup = {
  passwd: (key) => {
    const out = getent('passwd', key);
    return out === undefined ? undefined : parsePasswdLine(out.split('\n')[0]!);
  },
  group: (key) => {
    const out = getent('group', key);
    return out === undefined ? undefined : parseGroupLine(out.split('\n')[0]!);
  },
};
