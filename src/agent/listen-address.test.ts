import { describe, expect, it } from 'vitest';
import { ListenAddressError, parseListenAddress } from './listen-address.js';

describe('parseListenAddress', () => {
  it('takes IPv4 and bracketed IPv6 with a port, and off', () => {
    expect(parseListenAddress('127.0.0.1:9323')).toEqual({ host: '127.0.0.1', port: 9323 });
    expect(parseListenAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListenAddress('off')).toBeNull();
  });
  it('refuses names, missing or out-of-range ports, saying what to give', () => {
    for (const bad of ['localhost:9323', '127.0.0.1', '127.0.0.1:70000', '::1:9323', '']) {
      expect(() => parseListenAddress(bad)).toThrow(ListenAddressError);
    }
    expect(() => parseListenAddress('localhost:1')).toThrow(/invalid --metrics-addr "localhost:1": localhost is not an IP address\. Use IP:PORT/);
  });
});
