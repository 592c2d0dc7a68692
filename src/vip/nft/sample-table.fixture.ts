import type { LbTable } from '../lb-table.js';

/** A table that exercises every renderer feature; the golden files and tracer tests use it. */
export const SAMPLE_TABLE: LbTable = {
  services: [
    {
      id: 'web',
      frontend: { kind: 'vip', address: '10.0.0.2', protocol: 'tcp', port: 80 },
      scheduler: 'rr',
      backends: [
        { address: '10.0.1.3', port: 8080, weight: 1 },
        { address: '10.0.1.1', port: 8080, weight: 1 },
        { address: '10.0.1.2', port: 8080, weight: 0 },
      ],
    },
    {
      id: 'api',
      frontend: { kind: 'vip', address: '10.0.0.3', protocol: 'tcp', port: 443 },
      scheduler: 'wrr',
      backends: [
        { address: '10.0.1.1', port: 8443, weight: 2 },
        { address: '10.0.1.3', port: 8443, weight: 4 },
      ],
    },
    {
      id: 'dns',
      frontend: { kind: 'vip', address: '10.0.0.4', protocol: 'udp', port: 53 },
      scheduler: 'sh',
      persistenceSeconds: 600,
      backends: [
        { address: '10.0.1.1', port: 53, weight: 1 },
        { address: '10.0.1.3', port: 53, weight: 3 },
        { address: '10.0.1.4', port: 53, weight: 0 },
      ],
    },
    { id: 'empty', frontend: { kind: 'vip', address: '10.0.0.5', protocol: 'tcp', port: 80 }, scheduler: 'rr', backends: [] },
    {
      id: 'ingress-web',
      frontend: { kind: 'fwmark', mark: 256, protocol: 'tcp', port: 8080 },
      scheduler: 'random',
      sourceNat: '10.255.0.2',
      backends: [
        { address: '10.255.0.5', port: 0, weight: 1 },
        { address: '10.255.0.6', port: 80, weight: 1 },
      ],
    },
    { id: 'ingress-none', frontend: { kind: 'fwmark', mark: 257, protocol: 'udp', port: 9000, address: '192.168.1.1' }, scheduler: 'rr', backends: [] },
    {
      id: 'snat',
      frontend: { kind: 'vip', address: '10.0.0.6', protocol: 'tcp', port: 80 },
      scheduler: 'rr',
      sourceNat: '10.0.0.1',
      backends: [{ address: '10.0.1.9', port: 80, weight: 1 }],
    },
  ],
};
