import { describe, expect, it } from 'vitest';
import { secretFileProblem, storeOptionsFrom, type SecretReader } from './store-flags.js';

const noFiles: SecretReader = (path) => {
  throw new Error(`unexpected read of ${path}`);
};

describe('storeOptionsFrom', () => {
  it('builds TLS and credentials from flags, the password from a file', () => {
    const files: SecretReader = (path) => (path === '/etc/meshnet/etcd-password' ? 's3:cret' : noFiles(path));
    const flags = { etcdCacert: '/ca', etcdCert: '/c', etcdKey: '/k', etcdUser: 'mesh', etcdPasswordFile: '/etc/meshnet/etcd-password' };
    expect(storeOptionsFrom(flags, {}, files)).toEqual({
      etcd: { tls: { caFile: '/ca', certFile: '/c', keyFile: '/k' }, auth: { username: 'mesh', password: 's3:cret' } },
    });
  });

  it('takes every setting from the environment an EnvironmentFile sets, and is empty when nothing is set', () => {
    const env = {
      MESHNET_ETCD_CA: '/pki/ca.crt',
      MESHNET_ETCD_CERT: '/pki/client.crt',
      MESHNET_ETCD_KEY: '/pki/client.key',
      MESHNET_ETCD_USER: 'mesh',
      MESHNET_ETCD_PASSWORD: 'pw',
    };
    expect(storeOptionsFrom({}, env, noFiles)).toEqual({
      etcd: { tls: { caFile: '/pki/ca.crt', certFile: '/pki/client.crt', keyFile: '/pki/client.key' }, auth: { username: 'mesh', password: 'pw' } },
    });
    expect(storeOptionsFrom({}, { MESHNET_ETCD_USER: 'mesh', MESHNET_ETCD_PASSWORD_FILE: '/f' }, () => 'from-file').etcd?.auth).toEqual({ username: 'mesh', password: 'from-file' });
    expect(storeOptionsFrom({}, {}, noFiles)).toEqual({});
  });

  it('flags win over the environment', () => {
    expect(storeOptionsFrom({ etcdCacert: '/flag-ca' }, { MESHNET_ETCD_CA: '/env-ca' }, noFiles).etcd?.tls?.caFile).toBe('/flag-ca');
  });

  it('takes --insecure-store from the flag or MESHNET_INSECURE_STORE, and refuses a value that is not yes/no', () => {
    expect(storeOptionsFrom({ insecureStore: true }, {}, noFiles)).toEqual({ etcd: { insecure: true } });
    expect(storeOptionsFrom({}, { MESHNET_INSECURE_STORE: '1' }, noFiles)).toEqual({ etcd: { insecure: true } });
    expect(storeOptionsFrom({}, { MESHNET_INSECURE_STORE: '0' }, noFiles)).toEqual({});
    expect(() => storeOptionsFrom({}, { MESHNET_INSECURE_STORE: 'maybe' }, noFiles)).toThrow(/MESHNET_INSECURE_STORE="maybe" is not a yes\/no value/);
  });

  it('refuses a password on the command line, saying how to give it', () => {
    for (const flags of [{ etcdUser: 'mesh:s3cret' }, { etcdUser: 'mesh', etcdPassword: 's3cret' }]) {
      expect(() => storeOptionsFrom(flags, {}, noFiles)).toThrow(/\/proc\/PID\/cmdline.*--etcd-password-file PATH.*MESHNET_ETCD_PASSWORD/);
    }
    expect(() => storeOptionsFrom({}, { MESHNET_ETCD_USER: 'mesh:s3cret' }, noFiles)).toThrow(/NAME only, not NAME:PASSWORD/);
  });

  it('refuses half a client certificate, a certificate without a CA, a user without a password and a password without a user', () => {
    expect(() => storeOptionsFrom({ etcdCacert: '/ca', etcdCert: '/c' }, {}, noFiles)).toThrow(/both --etcd-cert and --etcd-key/);
    expect(() => storeOptionsFrom({ etcdCert: '/c', etcdKey: '/k' }, {}, noFiles)).toThrow(/need --etcd-cacert \(env MESHNET_ETCD_CA\)/);
    expect(() => storeOptionsFrom({ etcdUser: 'mesh' }, {}, noFiles)).toThrow(/--etcd-user mesh has no password/);
    expect(() => storeOptionsFrom({}, { MESHNET_ETCD_PASSWORD: 'pw' }, noFiles)).toThrow(/without a user: also give --etcd-user NAME/);
  });
});

describe('secretFileProblem', () => {
  const stat = (mode: number, uid = 0, file = true) => ({ mode: 0o100000 | mode, uid, isFile: () => file });
  it('accepts root-owned 0600 and 0400 files', () => {
    expect(secretFileProblem('/p', stat(0o600))).toBeUndefined();
    expect(secretFileProblem('/p', stat(0o400))).toBeUndefined();
  });
  it('refuses files others can read or write, files of another owner, and non-files', () => {
    expect(secretFileProblem('/p', stat(0o644))).toMatch(/mode 0644; make it 0600 or 0400 \(chmod 600 \/p\)/);
    expect(secretFileProblem('/p', stat(0o640))).toMatch(/mode 0640/);
    expect(secretFileProblem('/p', stat(0o700))).toMatch(/mode 0700/);
    expect(secretFileProblem('/p', stat(0o600, 1000))).toMatch(/owned by uid 1000; make it root's/);
    expect(secretFileProblem('/p', stat(0o600, 0, false))).toMatch(/not a regular file/);
  });
});
