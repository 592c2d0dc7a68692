import type { OpenStoreOptions } from '../store/open-store.js';
import { CliError, EXIT } from './cli-context.js';

/** etcd security flags as given on the command line (each falls back to an environment variable). */
export interface StoreFlags {
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
}

/**
 * openStore options from flags or MESHNET_ETCD_CACERT / _CERT / _KEY / _USER ("name:password").
 * Half a client certificate or a user without a password is refused with what is missing.
 */
export function storeOptionsFrom(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): OpenStoreOptions {
  const cacert = flags.etcdCacert ?? env['MESHNET_ETCD_CACERT'];
  const cert = flags.etcdCert ?? env['MESHNET_ETCD_CERT'];
  const key = flags.etcdKey ?? env['MESHNET_ETCD_KEY'];
  const user = flags.etcdUser ?? env['MESHNET_ETCD_USER'];
  const etcd: NonNullable<OpenStoreOptions['etcd']> = {};
  if (cacert || cert || key) {
    if (!cacert) throw new CliError('--etcd-cert/--etcd-key need --etcd-cacert (the CA that signed etcd\'s certificate)', EXIT.usage);
    if (!!cert !== !!key) throw new CliError('give both --etcd-cert and --etcd-key (a client certificate and its key), or neither', EXIT.usage);
    etcd.tls = { caFile: cacert, ...(cert ? { certFile: cert } : {}), ...(key ? { keyFile: key } : {}) };
  }
  if (user) {
    const colon = user.indexOf(':');
    if (colon < 1) throw new CliError('--etcd-user takes NAME:PASSWORD', EXIT.usage);
    etcd.auth = { username: user.slice(0, colon), password: user.slice(colon + 1) };
  }
  return Object.keys(etcd).length > 0 ? { etcd } : {};
}
