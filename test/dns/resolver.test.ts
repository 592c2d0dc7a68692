import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsService } from '../../src/dns/dns-service.js';
import { buildNameView, type NameViewInput, type TaskRecord } from '../../src/dns/name-view.js';
import { taskResolvConf } from '../../src/dns/resolv-conf.js';
import { execIn, spawnIn } from '../../src/sandbox/exec.js';
import { DnsLab, dig } from './lab.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const client = `${root}dist/test/dns/lab-client.js`;

function webTasks(n: number): TaskRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `web.${i + 1}.t${i + 1}`,
    service: 'web',
    running: true,
    ips: [{ network: 'front', ip: `10.0.1.${i + 3}` }],
  }));
}

function input(webCount: number, taskNetworks = ['front', 'big']): NameViewInput {
  return {
    taskNetworks,
    services: [
      { name: 'web', endpointMode: 'vip', attachments: [{ network: 'front', vip: '10.0.1.2' }], ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }] },
      { name: 'big', endpointMode: 'dnsrr', attachments: [{ network: 'big' }] },
      { name: 'hidden', endpointMode: 'vip', attachments: [{ network: 'other', vip: '10.0.3.2' }] },
    ],
    tasks: [
      ...webTasks(webCount),
      ...Array.from({ length: 100 }, (_, i) => ({ name: `big.${i}`, service: 'big', running: true, ips: [{ network: 'big', ip: `10.0.2.${i + 10}` }] })),
      { name: 'hidden.1.x', service: 'hidden', running: true, ips: [{ network: 'other', ip: '10.0.3.3' }] },
    ],
  };
}

/** Starts a lab-client process in a namespace and waits for its first JSON line. */
function startClient(netns: string, args: string[]): Promise<{ child: ChildProcess; first: Record<string, unknown> }> {
  const child = spawnIn(netns, ['node', client, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve({ child, first: JSON.parse(line) as Record<string, unknown> });
    });
    child.on('exit', (code) => reject(new Error(`lab client ${args[0]} exited with ${code}: ${err}`)));
  });
}

/** Runs a bounded lab-client to its end and returns its JSON line. */
async function runClient(netns: string, args: string[]): Promise<Record<string, number>> {
  const r = await execIn(netns, ['node', client, ...args], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

describe('resolver inside task namespaces', () => {
  const lab = new DnsLab();
  const ttlSeconds = 2;
  const dns = new DnsService({ upstreams: ['127.0.0.53'], ttlSeconds, workers: 2, forwardTimeoutMs: 1000, port: 53 });
  const children: ChildProcess[] = [];
  let task = '';
  let task2 = '';
  let outside = '';
  let resolvConf = '';

  beforeAll(async () => {
    if (!existsSync(client)) throw new Error(`${client} is missing: run \`npm run build\` first`);
    task = await lab.namespace('task');
    task2 = await lab.namespace('task2');
    outside = await lab.namespace('outside');
    // The VIP as a local address stands in for the load balancer: this file tests names, not balancing.
    await execIn(task, ['ip', 'addr', 'add', '10.0.1.2/32', 'dev', 'lo']);
    children.push((await startClient(task, ['upstream', '127.0.0.53', '192.0.2.7'])).child);
    children.push((await startClient(task, ['http', '10.0.1.2'])).child);
    resolvConf = lab.file('resolv.conf', taskResolvConf('nameserver 10.255.255.53\n').taskResolvConf);
    await dns.attach(task, buildNameView(input(3)));
    await dns.attach(task2, buildNameView(input(3, ['other'])));
  });

  afterAll(async () => {
    for (const c of children) if (c.pid) process.kill(c.pid, 'SIGKILL');
    await dns.close();
    await lab.cleanup();
  });

  it('dig: <service> answers the VIP and tasks.<service> all three task IPs, over UDP and TCP', async () => {
    const vip = await dig(task, ['web']);
    expect(vip.status).toBe('NOERROR');
    expect(vip.answers).toEqual(['10.0.1.2']);
    for (const extra of [[], ['+tcp']]) {
      const tasks = await dig(task, [...extra, 'tasks.web']);
      expect(tasks.answers.sort()).toEqual(['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    }
    expect((await dig(task, ['-x', '10.0.1.4'])).answers).toEqual(['web.2.t2.front.']);
    expect((await dig(task, ['_8080._tcp.web', 'SRV'])).answers).toEqual(['0 0 80 web.front.']);
    expect((await dig(task, ['web', 'AAAA'])).status).toBe('NOERROR');
  });

  it('each namespace sees only its own networks', async () => {
    expect((await dig(task2, ['hidden'])).answers).toEqual(['10.0.3.2']);
    // web is not on task2's network: forwarded, and the fake upstream is not reachable from task2
    expect((await dig(task2, ['web'])).status).toBe('SERVFAIL');
    // hidden is not on task's networks: forwarded to the upstream, which does not know it
    expect((await dig(task, ['hidden'])).status).toBe('NXDOMAIN');
  });

  it('getent hosts and curl resolve through 127.0.0.11 with the generated resolv.conf', async () => {
    const hosts = await lab.asTask(task, resolvConf, ['getent', 'hosts', 'web']);
    expect(hosts.stdout.trim().split(/\s+/)).toEqual(['10.0.1.2', 'web']);
    const all = await lab.asTask(task, resolvConf, ['getent', 'ahostsv4', 'tasks.web']);
    expect(new Set(all.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]))).toEqual(new Set(['10.0.1.3', '10.0.1.4', '10.0.1.5']));
    const curl = await lab.asTask(task, resolvConf, ['curl', '-sS', '--max-time', '5', 'http://web/']);
    expect(curl.stdout).toBe('hello from web\n');
  });

  it('forwards names that are not ours to the upstream and relays its answer as is', async () => {
    const ext = await dig(task, ['www.example']);
    expect(ext.status).toBe('NOERROR');
    expect(ext.answers).toEqual(['192.0.2.7']);
    const r = await execIn(task, ['dig', '+time=2', '+tries=1', '@127.0.0.11', 'www.example'], { allowFailure: true });
    expect(r.stdout).toMatch(/www\.example\.\s+77\s+IN\s+A\s+192\.0\.2\.7/);
    expect((await dig(task, ['nothing.invalid'])).status).toBe('NXDOMAIN');
    // truncated upstream answer: relayed with TC over UDP, fetched over TCP from inside the task for a TCP client
    const udpTc = await dig(task, ['+ignore', 'tc.example']);
    expect(udpTc.flags.split(' ')).toContain('tc');
    expect((await dig(task, ['+tcp', 'tc.example'])).answers.sort()).toEqual(['192.0.2.7', '192.0.2.8']);
    const viaLibc = await lab.asTask(task, resolvConf, ['getent', 'hosts', 'api.example']);
    expect(viaLibc.stdout.trim().split(/\s+/)).toEqual(['192.0.2.7', 'api.example']);
  });

  it('UDP answers that do not fit 512 bytes set TC, and the TCP retry gets them all', async () => {
    const truncated = await dig(task, ['+noedns', '+ignore', 'tasks.big']);
    expect(truncated.flags.split(' ')).toContain('tc');
    expect(truncated.answers.length).toBeLessThan(100);
    const full = await dig(task, ['+noedns', 'tasks.big']);
    expect(full.answers.length).toBe(100);
  });

  it('scaling the service changes the answers within the TTL', async () => {
    dns.update(task, buildNameView(input(5)));
    const start = Date.now();
    let ips: string[] = [];
    while (Date.now() - start < ttlSeconds * 1000) {
      ips = (await dig(task, ['tasks.web'])).answers.sort();
      if (ips.length === 5) break;
    }
    expect(ips).toEqual(['10.0.1.3', '10.0.1.4', '10.0.1.5', '10.0.1.6', '10.0.1.7']);
    expect(Date.now() - start).toBeLessThan(ttlSeconds * 1000);
    expect(dns.update(task, buildNameView(input(1)))).toBe(true);
    expect((await dig(task, ['tasks.web'])).answers).toEqual(['10.0.1.3']);
    // The same names again (a periodic check) are no change.
    expect(dns.update(task, buildNameView(input(1)))).toBe(false);
    expect(dns.update(task, buildNameView(input(3)))).toBe(true);
  });

  it('a UDP flood of random and bit-flipped packets does not starve a legitimate query loop', async () => {
    const flood = runClient(task, ['flood', '60000', '4000']);
    const loop = runClient(task, ['query-loop', 'web', '10.0.1.2', '5000', '3500']);
    const [f, l] = await Promise.all([flood, loop]);
    console.log(JSON.stringify({ flood: f, loop: l }));
    expect(f.sent).toBeGreaterThan(10_000);
    expect(l.wrong).toBe(0);
    expect(l.asked).toBeGreaterThanOrEqual(20);
    // a few may be lost when the flood fills the kernel queue while the worker is descheduled
    expect(l.answered).toBeGreaterThanOrEqual(Math.floor(l.asked! * 0.9));
    expect((await dig(task, ['web'])).answers).toEqual(['10.0.1.2']);
  });

  it('never answers outside the task namespaces it serves', async () => {
    const fresh = await dig(outside, ['web']);
    expect(fresh.status).toBe('NO_ANSWER');
    expect(fresh.code).toBe(9);
    // nothing bound to 127.0.0.11:53 (0B00007F:0035) in the namespace the tests run in
    const here = readFileSync('/proc/net/udp', 'utf8') + readFileSync('/proc/net/tcp', 'utf8');
    expect(here).not.toContain('0B00007F:0035');
  });

  it('attach and update refuse what they cannot serve, with typed errors', async () => {
    await expect(dns.attach(task, buildNameView(input(3)))).rejects.toMatchObject({ code: 'DNS_ALREADY_ATTACHED' });
    await expect(dns.attach(`${lab.base}/netns/missing`, buildNameView(input(3)))).rejects.toMatchObject({ code: 'DNS_ATTACH_FAILED' });
    const bad = buildNameView(input(3));
    bad.networks[0]!.services[0]!.vip = 'not-an-ip';
    expect(() => dns.update(task, bad)).toThrow(/services\.0\.vip/);
    expect(() => dns.update(outside, buildNameView(input(3)))).toThrow(/attach\(\) it first/);
    expect(dns.attached().sort()).toEqual([task, task2].sort());
  });

  it('an update or detach sent while the attach is still binding is not lost', async () => {
    const t3 = await lab.namespace('task3');
    const attached = dns.attach(t3, buildNameView(input(3)));
    dns.update(t3, buildNameView(input(2)));
    await attached;
    expect((await dig(t3, ['tasks.web'])).answers.sort()).toEqual(['10.0.1.3', '10.0.1.4']);
    await dns.detach(t3);
    const t4 = await lab.namespace('task4');
    const again = dns.attach(t4, buildNameView(input(3)));
    const gone = dns.detach(t4);
    await Promise.all([again, gone]);
    expect((await dig(t4, ['web'])).code).toBe(9);
  });

  it('detach closes the sockets of that namespace only', async () => {
    await dns.detach(task2);
    expect((await dig(task2, ['hidden'])).code).toBe(9);
    expect((await dig(task, ['web'])).answers).toEqual(['10.0.1.2']);
  });
});
