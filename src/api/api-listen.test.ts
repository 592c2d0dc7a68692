import { describe, expect, it } from 'vitest';
import { apiListenPlan } from './api-listen.js';
import { formatEndpoint, parseApiAddr, parseEndpoint } from './api-endpoint.js';
import { resolveApiTls } from './api-tls.js';
import { ApiSettingsError } from './api-errors.js';

const tls = { certFile: '/etc/meshnet/pki/client.crt', keyFile: '/etc/meshnet/pki/client.key', caFile: '/etc/meshnet/pki/ca.crt' };

describe('apiListenPlan', () => {
  it('listens only on <state-dir>/api.sock without TLS material', () => {
    expect(apiListenPlan({ advertiseAddr: '10.1.0.11', stateDir: '/run/meshnet', tls: undefined })).toEqual({ kind: 'unix', path: '/run/meshnet/api.sock', advertise: 'unix:/run/meshnet/api.sock' });
  });

  it('refuses --api-addr without TLS material rather than listen on TCP in plaintext', () => {
    expect(() => apiListenPlan({ apiAddr: '10.1.0.11:9324', advertiseAddr: '10.1.0.11', stateDir: '/run/meshnet', tls: undefined })).toThrow(/needs TLS material/);
  });

  it('listens over HTTPS on the advertise address, port 9324, by default, and advertises a wildcard as the advertise address', () => {
    expect(apiListenPlan({ advertiseAddr: '10.1.0.11', stateDir: '/run/meshnet', tls })).toMatchObject({ kind: 'https', host: '10.1.0.11', port: 9324, advertise: 'https://10.1.0.11:9324' });
    expect(apiListenPlan({ apiAddr: '0.0.0.0:9400', advertiseAddr: '10.1.0.11', stateDir: '/run/meshnet', tls })).toMatchObject({ host: '0.0.0.0', port: 9400, advertise: 'https://10.1.0.11:9400' });
  });

  it('refuses a socket path longer than a unix socket address holds', () => {
    expect(() => apiListenPlan({ advertiseAddr: '10.1.0.11', stateDir: `/${'d'.repeat(110)}`, tls: undefined })).toThrow(/longer than 107 bytes/);
  });
});

describe('endpoints and --api-addr', () => {
  it('round-trips both endpoint forms and refuses others', () => {
    for (const e of ['unix:/run/meshnet/api.sock', 'https://10.1.0.11:9324', 'https://[2001:db8::11]:9324']) expect(formatEndpoint(parseEndpoint(e))).toBe(e);
    expect(formatEndpoint({ kind: 'https', host: '2001:db8::11', port: 9324 })).toBe('https://[2001:db8::11]:9324');
    for (const e of ['unix:relative.sock', 'http://10.1.0.11:9324', 'https://host:9324', 'https://10.1.0.11:0', 'https://2001:db8::11:9324', 'https://[10.1.0.11]:9324']) expect(() => parseEndpoint(e)).toThrow(ApiSettingsError);
  });

  it('takes IP or IP:PORT', () => {
    expect(parseApiAddr('10.1.0.11')).toEqual({ host: '10.1.0.11', port: 9324 });
    expect(parseApiAddr('10.1.0.11:443')).toEqual({ host: '10.1.0.11', port: 443 });
    expect(parseApiAddr('[2001:db8::11]:443')).toEqual({ host: '2001:db8::11', port: 443 });
    expect(parseApiAddr('2001:db8::11')).toEqual({ host: '2001:db8::11', port: 9324 });
    for (const bad of ['10.1.0.300', ':9324', '10.1.0.11:70000', 'host:1', '[10.1.0.11]:1', '[2001:db8::zz]:1']) expect(() => parseApiAddr(bad)).toThrow(/invalid --api-addr/);
  });
});

describe('resolveApiTls', () => {
  it('takes the three --api-* flags, or the etcd client certificate when complete, or nothing', () => {
    expect(resolveApiTls({ apiCert: '/a.crt', apiKey: '/a.key', apiCa: '/ca.crt' }, tls)).toEqual({ certFile: '/a.crt', keyFile: '/a.key', caFile: '/ca.crt' });
    expect(resolveApiTls({}, tls)).toBe(tls);
    // etcd over TLS without a client certificate gives the API nothing to present.
    expect(resolveApiTls({}, { caFile: '/ca.crt' })).toBeUndefined();
    expect(resolveApiTls({}, undefined)).toBeUndefined();
  });

  it('refuses half a set of flags, saying what to give', () => {
    expect(() => resolveApiTls({ apiCert: '/a.crt' }, tls)).toThrow(/give --api-cert, --api-key and --api-ca together/);
  });
});
