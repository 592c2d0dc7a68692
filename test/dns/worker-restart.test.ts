import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsService } from '../../src/dns/dns-service.js';
import { buildNameView, type NameView } from '../../src/dns/name-view.js';
import { createLogger } from '../../src/log/logger.js';
import { DnsLab, dig } from './lab.js';

function view(vip: string): NameView {
  return buildNameView({
    taskNetworks: ['front'],
    services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip }] }],
    tasks: [],
  });
}

/** Kills the service's worker threads the way a crash would end them (the test reaches into the pool). */
async function killWorkers(dns: DnsService): Promise<void> {
  const slots = (dns as unknown as { slots: { worker: Worker | null }[] }).slots;
  await Promise.all(slots.map((s) => s.worker?.terminate()));
}

async function digUntil(netns: string, args: string[], want: string[], limitMs: number): Promise<string[]> {
  const end = Date.now() + limitMs;
  let got: string[] = [];
  while (Date.now() < end) {
    got = (await dig(netns, args)).answers;
    if (JSON.stringify(got) === JSON.stringify(want)) break;
  }
  return got;
}

describe('a dead DNS worker', () => {
  const lab = new DnsLab();
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: 'info', destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) } });
  const dns = new DnsService({ upstreams: [], workers: 1, log });
  let a = '';
  let b = '';

  beforeAll(async () => {
    a = await lab.namespace('a');
    b = await lab.namespace('b');
    // One on :53 directly, one on a kernel-chosen port: both must come back where they were.
    await dns.attach(a, view('10.0.1.2'), { port: 53 });
    await dns.attach(b, view('10.0.2.2'));
  });

  afterAll(async () => {
    await dns.close();
    await lab.cleanup();
  });

  it('is restarted, and the namespaces it served answer again, on their ports, with the latest view', async () => {
    const portB = dns.portOf(b)!;
    expect((await dig(a, ['web'])).answers).toEqual(['10.0.1.2']);
    await killWorkers(dns);
    // Changed while the worker is down: the restart must carry this view, not the first one.
    dns.update(a, view('10.0.1.9'));
    expect(await digUntil(a, ['web'], ['10.0.1.9'], 10_000)).toEqual(['10.0.1.9']);
    expect(dns.portOf(b)).toBe(portB);
    // No NAT rules in this test: b's resolver is asked at its own port.
    expect((await dig(b, ['-p', String(portB), 'web'])).answers).toEqual(['10.0.2.2']);
    expect(lines.find((l) => l.event === 'dns.worker_died')).toMatchObject({ component: 'dns', level: 'error', worker: 0, namespaces: 2 });
    expect(lines.find((l) => l.event === 'dns.worker_restarted')).toMatchObject({ component: 'dns', level: 'info', worker: 0, namespaces: 2 });
  });

  it('updates, attaches and detaches keep working after the restart', async () => {
    dns.update(a, view('10.0.1.7'));
    expect(await digUntil(a, ['web'], ['10.0.1.7'], 5000)).toEqual(['10.0.1.7']);
    const c = await lab.namespace('c');
    await dns.attach(c, view('10.0.3.2'), { port: 53 });
    expect((await dig(c, ['web'])).answers).toEqual(['10.0.3.2']);
    await dns.detach(c);
    expect((await dig(c, ['web'])).code).toBe(9);
  });
});
