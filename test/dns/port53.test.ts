import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsService } from '../../src/dns/dns-service.js';
import { buildNameView } from '../../src/dns/name-view.js';
import { resolverNatRules, resolverNatRuleSet } from '../../src/dns/resolver-nat.js';
import { renderRestore } from '../../src/mesh/iptables-render.js';
import { parseIptablesSave } from '../../src/mesh/iptables-save-parse.js';
import { execIn, spawnIn } from '../../src/sandbox/exec.js';
import { DnsLab, dig } from './lab.js';

const client = fileURLToPath(new URL('../../dist/test/dns/lab-client.js', import.meta.url));

const view = buildNameView({
  taskNetworks: ['front'],
  services: [{ name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }] }],
  tasks: [{ name: 'web.1.a', service: 'web', running: true, ips: [{ network: 'front', ip: '10.0.1.3' }] }],
});

describe('the resolver on a random port, reached on 127.0.0.11:53 through the task’s NAT rules', () => {
  const lab = new DnsLab();
  const dns = new DnsService({ upstreams: [], workers: 1 });
  const children: ChildProcess[] = [];
  let task = '';
  let port = 0;

  beforeAll(async () => {
    if (!existsSync(client)) throw new Error(`${client} is missing: run \`npm run build\` first`);
    task = await lab.namespace('task');
    ({ port } = await dns.attach(task, view));
  });

  afterAll(async () => {
    for (const c of children) if (c.pid) process.kill(c.pid, 'SIGKILL');
    await dns.close();
    await lab.cleanup();
  });

  it('listens on a kernel-chosen port, not :53, and reports it', async () => {
    expect(port).toBeGreaterThan(1024);
    expect(dns.portOf(task)).toBe(port);
    const sockets = (await execIn(task, ['ss', '-lnuH', 'src', '127.0.0.11'])).stdout + (await execIn(task, ['ss', '-lntH', 'src', '127.0.0.11'])).stdout;
    expect(sockets.match(/127\.0\.0\.11:(\d+)/g)).toEqual([`127.0.0.11:${port}`, `127.0.0.11:${port}`]);
    // No rules yet: nothing answers on :53.
    expect((await dig(task, ['web'])).code).toBe(9);
  });

  it('with the rendered rules applied, dig @127.0.0.11 answers over UDP and TCP', async () => {
    await execIn(task, ['iptables-restore', '--noflush', '-w'], { input: resolverNatRules(port) });
    expect((await dig(task, ['web'])).answers).toEqual(['10.0.1.2']);
    expect((await dig(task, ['+tcp', 'tasks.web'])).answers).toEqual(['10.0.1.3']);
    // What the kernel holds reads back as exactly the rule set: a writer would change nothing.
    const saved = parseIptablesSave((await execIn(task, ['iptables-save', '-t', 'nat'])).stdout);
    expect(renderRestore(resolverNatRuleSet(port), saved)).toBeNull();
  });

  it('a program in the task binds 0.0.0.0:53/udp while the resolver keeps answering on 127.0.0.11:53', async () => {
    const own = spawnIn(task, ['node', client, 'dns53', '192.0.2.53'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(own);
    const first = await new Promise<string>((resolve, reject) => {
      own.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
      own.once('exit', (code) => reject(new Error(`dns53 exited with ${code}`)));
    });
    expect(JSON.parse(first)).toEqual({ listening: '0.0.0.0:53' });
    const theirs = await execIn(task, ['dig', '+time=2', '+tries=1', '+short', '@127.0.0.1', 'anything']);
    expect(theirs.stdout.trim()).toBe('192.0.2.53');
    expect((await dig(task, ['web'])).answers).toEqual(['10.0.1.2']);
  });
});
