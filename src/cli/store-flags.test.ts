import { describe, expect, it } from 'vitest';
import { storeOptionsFrom } from './store-flags.js';

describe('storeOptionsFrom', () => {
  it('builds TLS and credentials from flags', () => {
    expect(storeOptionsFrom({ etcdCacert: '/ca', etcdCert: '/c', etcdKey: '/k', etcdUser: 'mesh:s3:cret' }, {})).toEqual({
      etcd: { tls: { caFile: '/ca', certFile: '/c', keyFile: '/k' }, auth: { username: 'mesh', password: 's3:cret' } },
    });
  });
  it('falls back to the environment, and is empty when nothing is set', () => {
    expect(storeOptionsFrom({}, { MESHNET_ETCD_CACERT: '/ca' })).toEqual({ etcd: { tls: { caFile: '/ca' } } });
    expect(storeOptionsFrom({}, {})).toEqual({});
  });
  it('refuses half a client certificate, a certificate without a CA, and a user without a password', () => {
    expect(() => storeOptionsFrom({ etcdCacert: '/ca', etcdCert: '/c' }, {})).toThrow(/both --etcd-cert and --etcd-key/);
    expect(() => storeOptionsFrom({ etcdCert: '/c', etcdKey: '/k' }, {})).toThrow(/need --etcd-cacert/);
    expect(() => storeOptionsFrom({ etcdUser: 'mesh' }, {})).toThrow(/NAME:PASSWORD/);
  });
});
