import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { etcdTransport, isLoopbackEndpoint, openStore } from '../../src/store/open-store.js';
import { StoreInsecureError } from '../../src/store/store-errors.js';

// The TLS-by-default policy of openStore: a non-loopback etcd needs a CA and a client certificate, or --insecure-store.

const mtls = { caFile: '/pki/ca.crt', certFile: '/pki/client.crt', keyFile: '/pki/client.key' };

describe('isLoopbackEndpoint', () => {
  test.each(['127.0.0.1:2379', '127.3.4.5:2379', 'localhost:2379', 'LocalHost:1', '[::1]:2379', '[0:0:0:0:0:0:0:1]:2379', '[::ffff:127.0.0.1]:2379'])('%s is loopback', (e) => {
    expect(isLoopbackEndpoint(e)).toBe(true);
  });
  test.each(['10.1.0.5:2379', '128.0.0.1:2379', '[::2]:2379', '[fd00::1]:2379', 'etcd.example.net:2379', 'localhost.example.net:2379', '0.0.0.0:2379'])('%s is not', (e) => {
    expect(isLoopbackEndpoint(e)).toBe(false);
  });
});

describe('etcdTransport', () => {
  test('a non-loopback etcd without TLS is refused, naming every flag and variable to give', () => {
    let err: unknown;
    try {
      etcdTransport(['10.1.0.5:2379']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreInsecureError);
    expect((err as StoreInsecureError).code).toBe('STORE_INSECURE');
    expect((err as Error).message).toMatch(
      /etcd at 10\.1\.0\.5:2379 is not on loopback.*missing: --etcd-cacert FILE \(env MESHNET_ETCD_CA\), --etcd-cert FILE \(env MESHNET_ETCD_CERT\), --etcd-key FILE \(env MESHNET_ETCD_KEY\).*--insecure-store \(env MESHNET_INSECURE_STORE=1\)/,
    );
  });

  test('TLS without a client certificate is refused too, naming only what is missing', () => {
    expect(() => etcdTransport(['10.1.0.5:2379'], { tls: { caFile: '/ca' } })).toThrow(/missing: --etcd-cert FILE \(env MESHNET_ETCD_CERT\), --etcd-key FILE \(env MESHNET_ETCD_KEY\)\./);
  });

  test('a client certificate without the CA is not mutual TLS', () => {
    expect(() => etcdTransport(['10.1.0.5:2379'], { tls: { certFile: '/c', keyFile: '/k' } })).toThrow(/missing: --etcd-cacert FILE \(env MESHNET_ETCD_CA\)\./);
  });

  test('one remote endpoint among loopback ones is enough to need TLS, and only it is named', () => {
    expect(() => etcdTransport(['127.0.0.1:2379', '10.1.0.6:2379'])).toThrow(/etcd at 10\.1\.0\.6:2379 is not on loopback/);
  });

  test('mutual TLS passes without a warning, from files or from PEM contents', () => {
    expect(etcdTransport(['10.1.0.5:2379', '10.1.0.6:2379'], { tls: mtls })).toEqual({ mode: 'mtls', remote: ['10.1.0.5:2379', '10.1.0.6:2379'] });
    expect(etcdTransport(['10.1.0.5:2379'], { tls: { ca: Buffer.from('ca'), cert: Buffer.from('c'), key: Buffer.from('k') } }).mode).toBe('mtls');
  });

  test('loopback may stay plaintext without the flag, and without a warning', () => {
    expect(etcdTransport(['127.0.0.1:2379', '[::1]:2379'])).toEqual({ mode: 'plaintext', remote: [] });
  });

  test('--insecure-store lets plaintext or server-only TLS through, with a warning that says what to give instead', () => {
    const plain = etcdTransport(['10.1.0.5:2379'], { insecure: true });
    expect(plain.mode).toBe('plaintext');
    expect(plain.warning).toMatch(/--insecure-store: talking to etcd at 10\.1\.0\.5:2379 in plaintext.*root on every host.*--etcd-cacert, --etcd-cert and --etcd-key/);
    expect(etcdTransport(['10.1.0.5:2379'], { insecure: true, tls: { caFile: '/ca' } }).warning).toMatch(/over TLS without a client certificate/);
    expect(etcdTransport(['10.1.0.5:2379'], { insecure: true, tls: mtls }).warning).toBeUndefined();
  });
});

describe('openStore', () => {
  function capture(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
    let text = '';
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString();
        done();
      },
    });
    return { log: createLogger({ destination }), lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
  }

  test('refuses a non-loopback etcd without TLS before connecting', async () => {
    await expect(openStore('etcd://10.1.0.5:2379')).rejects.toBeInstanceOf(StoreInsecureError);
  });

  test('logs a warn line when --insecure-store lets plaintext through, and none for loopback', async () => {
    const insecure = capture();
    // Connects lazily: nothing is sent to 10.1.0.5 before a call, and the handle is closed unused.
    const store = await openStore('etcd://10.1.0.5:2379', { etcd: { insecure: true }, log: insecure.log });
    await store.close();
    expect(insecure.lines()).toEqual([expect.objectContaining({ level: 'warn', event: 'store.insecure', endpoints: ['10.1.0.5:2379'], transport: 'plaintext' })]);

    const local = capture();
    await (await openStore('etcd://127.0.0.1:1', { log: local.log })).close();
    expect(local.lines()).toEqual([]);
  });
});
