import { describe, expect, it } from 'vitest';
import { parseTarget, resolveQuery, viewRequests } from './explain-query.js';
import { ExplainInputError } from './explain-errors.js';
import { factsFixture } from './explain-fixtures.test-data.js';

const facts = factsFixture();

describe('explain targets', () => {
  it('parses HOST:PORT[/udp] and SERVICE, and refuses anything else with the accepted forms', () => {
    expect(parseTarget('host-a:8000')).toEqual({ kind: 'endpoint', host: 'host-a', port: 8000, protocol: 'tcp' });
    expect(parseTarget('192.0.2.1:53/udp')).toEqual({ kind: 'endpoint', host: '192.0.2.1', port: 53, protocol: 'udp' });
    expect(parseTarget('web')).toEqual({ kind: 'service', name: 'web' });
    for (const bad of ['host-a:0', 'host-a:70000', 'host-a:80/sctp', ':80', 'a b']) expect(() => parseTarget(bad)).toThrow(ExplainInputError);
  });

  it('resolves a node by name or address, a VIP only with --from TASK, a service to every node', () => {
    expect(resolveQuery(parseTarget('192.0.2.2:8000'), facts, { from: '198.51.100.7' })).toEqual({ kind: 'published', targets: [{ node: 'host-b', protocol: 'tcp', port: 8000, from: '198.51.100.7' }] });
    expect(() => resolveQuery(parseTarget('10.255.0.100:80'), facts)).toThrow(/--from TASK/);
    expect(resolveQuery(parseTarget('10.255.0.100:80'), facts, { from: 'web.2' })).toEqual({ kind: 'vip', target: { vip: '10.255.0.100', port: 80, protocol: 'tcp', fromTask: 'task00000002' } });
    expect(resolveQuery(parseTarget('web'), facts).kind).toBe('service');
    expect((resolveQuery(parseTarget('web'), facts) as { targets: unknown[] }).targets).toHaveLength(3);
    expect(() => resolveQuery(parseTarget('host-z:80'), facts)).toThrow(/host-a 192\.0\.2\.1/);
    expect(() => resolveQuery(parseTarget('host-a:80'), facts, { from: 'web.1' })).toThrow(/IPv4 address/);
    expect(() => resolveQuery(parseTarget('nosuch'), facts)).toThrow(/meshnet service ls/);
    const unpublished = { ...facts, services: [{ ...facts.services[0]!, ports: [] }] };
    expect(() => resolveQuery(parseTarget('web'), unpublished)).toThrow(/publishes no port: .*meshnet explain 10\.255\.0\.100:PORT --from TASK/);
    expect(() => resolveQuery(parseTarget('host-a:80'), facts, { size: 10 })).toThrow(/--size/);
  });

  it('reads only what the query crosses on each node', () => {
    const r = viewRequests(resolveQuery(parseTarget('host-a:8000'), facts), facts);
    expect(r.get('host-a')).toEqual({ host: true, sbox: true, overlays: ['ingress'], tasks: [{ id: 'task00000001' }] });
    expect(r.get('host-b')).toEqual({ overlays: ['ingress'], tasks: [{ id: 'task00000002' }] });
    const v = viewRequests(resolveQuery(parseTarget('10.255.0.100:80'), facts, { from: 'web.2' }), facts);
    expect(v.get('host-b')).toEqual({ host: true, overlays: ['ingress'], tasks: [{ id: 'task00000002', lb: true }] });
  });
});
