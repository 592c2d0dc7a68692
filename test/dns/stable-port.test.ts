import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { DnsService } from '../../src/dns/dns-service.js';
import { buildNameView } from '../../src/dns/name-view.js';
import { stableResolverPort } from '../../src/dns/resolver-port.js';
import { spawnIn } from '../../src/sandbox/exec.js';
import { DnsLab, dig } from './lab.js';

const view = buildNameView({ taskNetworks: ['front'], services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }] }], tasks: [] });

/** Waits until `check` holds (bounded), for a listener started in the background. */
async function until(check: () => Promise<boolean>, limitMs: number): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) if (await check()) return true;
  return false;
}

describe("the resolver's port in a namespace", () => {
  const lab = new DnsLab();
  const holders: ChildProcess[] = [];

  afterAll(async () => {
    for (const h of holders) h.kill('SIGKILL');
    await lab.cleanup();
  });

  it('is the same after a restart of the service (an agent restart): the NAT rule to it stays right', async () => {
    const ns = await lab.namespace('same');
    const first = new DnsService({ upstreams: [], workers: 1 });
    const port = (await first.attach(ns, view)).port;
    expect(port).toBe(stableResolverPort(ns));
    expect((await dig(ns, ['-p', String(port), 'web'])).answers).toEqual(['10.0.1.2']);
    await first.close();
    // A new service, as a restarted agent makes: the same port, answering again.
    const second = new DnsService({ upstreams: [], workers: 1 });
    try {
      expect((await second.attach(ns, view)).port).toBe(port);
      expect((await dig(ns, ['-p', String(port), 'web'])).answers).toEqual(['10.0.1.2']);
    } finally {
      await second.close();
    }
  });

  it('is another free one when something in the namespace holds the stable port', async () => {
    const ns = await lab.namespace('taken');
    const stable = stableResolverPort(ns);
    // A task's own server on 127.0.0.11 at that port (UDP: what the resolver binds first).
    const holder = spawnIn(ns, ['python3', '-c', `import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.11', ${stable})); print('bound', flush=True); time.sleep(60)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    holders.push(holder);
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    expect(await until(async () => (await new Promise((r) => setTimeout(r, 20)), out.includes('bound')), 10_000)).toBe(true);
    const dns = new DnsService({ upstreams: [], workers: 1 });
    try {
      const port = (await dns.attach(ns, view)).port;
      expect(port).not.toBe(stable);
      expect(port).toBeGreaterThan(0);
      expect((await dig(ns, ['-p', String(port), 'web'])).answers).toEqual(['10.0.1.2']);
    } finally {
      await dns.close();
    }
  });

  it('is spread over the ephemeral range by the namespace path', () => {
    const ports = new Set(Array.from({ length: 200 }, (_, i) => stableResolverPort(`/run/meshnet/netns/t-${i.toString(16).padStart(12, '0')}`)));
    expect(ports.size).toBeGreaterThan(190);
    for (const p of ports) expect(p >= 32768 && p <= 60999).toBe(true);
  });
});
