import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import type { OpenStoreOptions } from '../store/open-store.js';
import { ETCD_PASSWORD_ENV, ETCD_SETTINGS } from '../store/store-errors.js';
import { CliError, EXIT } from './cli-context.js';

/** etcd security flags as given on the command line (each but the refused password falls back to the environment). */
export interface StoreFlags {
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  etcdPasswordFile?: string;
  /** Only so that a password on the command line is refused with how to give it instead. */
  etcdPassword?: string;
  insecureStore?: boolean;
}

/** Reads a password file; storeOptionsFrom takes another for tests. */
export type SecretReader = (path: string) => string;

const HOW_TO_GIVE_PASSWORD =
  `give ${ETCD_SETTINGS.user.flag} NAME and the password in a file (${ETCD_SETTINGS.passwordFile.flag} PATH or env ` +
  `${ETCD_SETTINGS.passwordFile.env}; mode 0600 or 0400, owned by root) or in env ${ETCD_PASSWORD_ENV}`;

/**
 * openStore options from flags, or from MESHNET_ETCD_CA / _CERT / _KEY / _USER / _PASSWORD_FILE / _PASSWORD and
 * MESHNET_INSECURE_STORE, so that a systemd EnvironmentFile can carry them all.
 * Refused: a password in argv, half a client certificate, a user without a password (and the reverse).
 */
export function storeOptionsFrom(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env, readSecret: SecretReader = readPasswordFile): OpenStoreOptions {
  const cacert = flags.etcdCacert ?? env[ETCD_SETTINGS.ca.env];
  const cert = flags.etcdCert ?? env[ETCD_SETTINGS.cert.env];
  const key = flags.etcdKey ?? env[ETCD_SETTINGS.key.env];
  const etcd: NonNullable<OpenStoreOptions['etcd']> = {};
  if (cacert || cert || key) {
    if (!cacert) {
      throw new CliError(`${ETCD_SETTINGS.cert.flag}/${ETCD_SETTINGS.key.flag} need ${ETCD_SETTINGS.ca.flag} (env ${ETCD_SETTINGS.ca.env}): the CA that signed etcd's certificate`, EXIT.usage);
    }
    if (!!cert !== !!key) throw new CliError(`give both ${ETCD_SETTINGS.cert.flag} and ${ETCD_SETTINGS.key.flag} (a client certificate and its key), or neither`, EXIT.usage);
    etcd.tls = { caFile: cacert, ...(cert ? { certFile: cert } : {}), ...(key ? { keyFile: key } : {}) };
  }
  const auth = credentialsFrom(flags, env, readSecret);
  if (auth !== undefined) etcd.auth = auth;
  if (flags.insecureStore === true || envFlag(env, ETCD_SETTINGS.insecure.env)) etcd.insecure = true;
  return Object.keys(etcd).length > 0 ? { etcd } : {};
}

function credentialsFrom(flags: StoreFlags, env: NodeJS.ProcessEnv, readSecret: SecretReader): { username: string; password: string } | undefined {
  if (flags.etcdPassword !== undefined) {
    throw new CliError(`a password on the command line is visible to every local user in /proc/PID/cmdline; ${HOW_TO_GIVE_PASSWORD}`, EXIT.usage);
  }
  const user = flags.etcdUser ?? env[ETCD_SETTINGS.user.env];
  if (user?.includes(':')) {
    // The old NAME:PASSWORD form: refuse it from the environment too, so one spelling works everywhere.
    throw new CliError(`${ETCD_SETTINGS.user.flag} takes a NAME only, not NAME:PASSWORD (argv is visible to every local user in /proc/PID/cmdline); ${HOW_TO_GIVE_PASSWORD}`, EXIT.usage);
  }
  const file = flags.etcdPasswordFile ?? env[ETCD_SETTINGS.passwordFile.env];
  const fromEnv = env[ETCD_PASSWORD_ENV];
  if (!user) {
    if (file || fromEnv) throw new CliError(`an etcd password was given without a user: also give ${ETCD_SETTINGS.user.flag} NAME (env ${ETCD_SETTINGS.user.env})`, EXIT.usage);
    return undefined;
  }
  const password = file ? readSecret(file) : fromEnv;
  if (!password) throw new CliError(`${ETCD_SETTINGS.user.flag} ${user} has no password: ${HOW_TO_GIVE_PASSWORD}`, EXIT.usage);
  return { username: user, password };
}

function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = (env[name] ?? '').trim().toLowerCase();
  if (['', '0', 'false', 'no'].includes(value)) return false;
  if (['1', 'true', 'yes'].includes(value)) return true;
  throw new CliError(`${name}=${JSON.stringify(env[name])} is not a yes/no value: use 1 or 0`, EXIT.usage);
}

/** Why a file may not hold a secret (other users can read or write it, or it is not root's), or undefined when it may. */
export function secretFileProblem(path: string, stat: Pick<Stats, 'mode' | 'uid' | 'isFile'>): string | undefined {
  if (!stat.isFile()) return `${path} is not a regular file`;
  const perms = stat.mode & 0o7777;
  if (perms !== 0o600 && perms !== 0o400) return `${path} has mode 0${perms.toString(8)}; make it 0600 or 0400 (chmod 600 ${path})`;
  if (stat.uid !== 0) return `${path} is owned by uid ${stat.uid}; make it root's (chown root: ${path})`;
  return undefined;
}

/** Reads a password file after checking, on the opened file, that only root can read it; one trailing newline is dropped. */
export function readPasswordFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new CliError(`cannot read the etcd password file ${path} (${ETCD_SETTINGS.passwordFile.flag}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`, EXIT.usage);
  }
  try {
    // fstat on the opened descriptor: the file checked is the file read, even if the path is swapped meanwhile.
    const problem = secretFileProblem(path, fstatSync(fd));
    if (problem !== undefined) throw new CliError(`refusing the etcd password file: ${problem}`, EXIT.usage);
    return readFileSync(fd, 'utf8').replace(/\r?\n$/, '');
  } finally {
    closeSync(fd);
  }
}
