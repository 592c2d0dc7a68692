import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { WatchEvent } from '../../src/store/kv-store.js';
import { openStore } from '../../src/store/open-store.js';
import { StoreTlsError, StoreTlsFileError } from '../../src/store/store-errors.js';
import { storeOptionsFrom } from '../../src/cli/store-flags.js';
import { EtcdTestServer } from './etcd-server.js';

// The etcd backend against a server that demands client certificates, and one that demands a password.

function makePki(dir: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
  const f = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=meshnet-test-ca');
  for (const [name, usage] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    writeFileSync(f(`${name}.ext`), usage);
    openssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=meshnet-${name}`);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
  }
  return { ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
}

describe('etcd backend security options', () => {
  let dir: string;
  let pki: ReturnType<typeof makePki>;
  let tlsServer: EtcdTestServer;
  let authServer: EtcdTestServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshnet-pki-'));
    pki = makePki(dir);
    tlsServer = await EtcdTestServer.start({ certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca });
    authServer = await EtcdTestServer.start();
    await authServer.etcdctl('user', 'add', 'root:rootpw');
    await authServer.etcdctl('role', 'add', 'root').catch(() => undefined);
    await authServer.etcdctl('user', 'grant-role', 'root', 'root');
    await authServer.etcdctl('user', 'add', 'meshnet:s3cret');
    await authServer.etcdctl('role', 'add', 'meshnet');
    await authServer.etcdctl('role', 'grant-permission', 'meshnet', '--prefix=true', 'readwrite', '/meshnet/');
    await authServer.etcdctl('user', 'grant-role', 'meshnet', 'meshnet');
    await authServer.etcdctl('auth', 'enable');
  });

  afterAll(async () => {
    await tlsServer?.stop();
    await authServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('mutual TLS with CA, client certificate and key files', async () => {
    const store = await openStore(`etcd://${tlsServer.endpoint}`, { etcd: { tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey } } });
    try {
      const events: WatchEvent[] = [];
      const watch = await store.watch('/meshnet/', {}, (e) => events.push(e));
      await store.put('/meshnet/tls', 'ok');
      expect((await store.get('/meshnet/tls'))?.value).toBe('ok');
      const deadline = Date.now() + 5000;
      while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      watch.close();
      expect(events[0]).toMatchObject({ type: 'put', key: '/meshnet/tls', value: 'ok' });
    } finally {
      await store.close();
    }
  });

  test('TLS options are checked before connecting', async () => {
    await expect(openStore(`etcd://${tlsServer.endpoint}`, { etcd: { tls: { certFile: pki.clientCert, keyFile: pki.clientKey } } })).rejects.toThrow(/needs a CA certificate/);
    await expect(openStore(`etcd://${tlsServer.endpoint}`, { etcd: { tls: { caFile: pki.ca, certFile: pki.clientCert } } })).rejects.toThrow(/both a certificate and its key/);
    const missing = openStore(`etcd://${tlsServer.endpoint}`, { etcd: { tls: { caFile: join(dir, 'nope.crt'), certFile: pki.clientCert, keyFile: pki.clientKey } } });
    await expect(missing).rejects.toBeInstanceOf(StoreTlsFileError);
    await expect(missing).rejects.toThrow(/cannot read .*nope\.crt given by --etcd-cacert \(env MESHNET_ETCD_CA\): ENOENT/);
  });

  test('a CA that did not sign etcd\'s certificate fails with a typed error that names the CA flag', async () => {
    const otherCa = join(dir, 'other-ca.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'other-ca.key'), '-out', otherCa, '-days', '1', '-subj', '/CN=other-ca'], { stdio: 'pipe' });
    const store = await openStore(`etcd://${tlsServer.endpoint}`, { etcd: { tls: { caFile: otherCa, certFile: pki.clientCert, keyFile: pki.clientKey } } });
    try {
      const failed = store.get('/meshnet/tls');
      await expect(failed).rejects.toBeInstanceOf(StoreTlsError);
      await expect(failed).rejects.toThrow(/etcd's certificate does not verify \(.+\): --etcd-cacert \(env MESHNET_ETCD_CA\) must be the CA that signed it/);
    } finally {
      await store.close();
    }
  });

  test('username and password', async () => {
    const good = await openStore(`etcd://${authServer.endpoint}`, { etcd: { auth: { username: 'meshnet', password: 's3cret' } } });
    const bad = await openStore(`etcd://${authServer.endpoint}`, { etcd: { auth: { username: 'meshnet', password: 'wrong' } } });
    const anonymous = await openStore(`etcd://${authServer.endpoint}`);
    try {
      await good.put('/meshnet/auth', 'ok');
      expect((await good.get('/meshnet/auth'))?.value).toBe('ok');
      await expect(bad.get('/meshnet/auth')).rejects.toThrow(/authentication failed|invalid/i);
      await expect(anonymous.get('/meshnet/auth')).rejects.toThrow(/user name is empty|permission denied|token/i);
      await expect(good.put('/elsewhere', 'x')).rejects.toThrow(/permission denied/i);
    } finally {
      await Promise.all([good.close(), bad.close(), anonymous.close()]);
    }
  });

  test('the password comes from a root-owned 0600 file, and a file others can read is refused', async () => {
    const file = join(dir, 'etcd-password');
    writeFileSync(file, 's3cret\n', { mode: 0o600 });
    const options = storeOptionsFrom({ etcdUser: 'meshnet', etcdPasswordFile: file }, {});
    const store = await openStore(`etcd://${authServer.endpoint}`, options);
    try {
      await store.put('/meshnet/from-file', 'ok');
      expect((await store.get('/meshnet/from-file'))?.value).toBe('ok');
    } finally {
      await store.close();
    }
    chmodSync(file, 0o644);
    expect(() => storeOptionsFrom({ etcdUser: 'meshnet', etcdPasswordFile: file }, {})).toThrow(/refusing the etcd password file: .* has mode 0644; make it 0600 or 0400/);
    chmodSync(file, 0o400);
    chownSync(file, 65534, 65534);
    expect(() => storeOptionsFrom({ etcdUser: 'meshnet', etcdPasswordFile: file }, {})).toThrow(/owned by uid 65534; make it root's/);
  });
});
