import { closeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn, spawnIn } from '../../src/sandbox/exec.js';
import { HealthServers } from '../../src/mesh/health-server.js';
import { ListenFailedError, listenTcpInNetns } from '../../src/mesh/netns-listener.js';
import { MeshLab } from './mesh-lab.js';

// The health servers listen in a "host" namespace this process does not run in; a client asks over a veth.
const lab = new MeshLab('mesh-health');
let host = '';
let client = '';
let servers: HealthServers;

async function ask(port: number): Promise<{ status: string; body: string }> {
  const r = await execIn(client, ['curl', '-sS', '--max-time', '2', '-w', '\\n%{http_code}', `http://192.0.2.1:${port}/healthz`], {
    allowFailure: true,
  });
  const lines = r.stdout.trim().split('\n');
  return { status: r.code === 0 ? lines.at(-1)! : `curl exit ${r.code}`, body: lines.slice(0, -1).join('\n').trim() };
}

describe('health ports of policy=local services, served in the host namespace', () => {
  beforeAll(async () => {
    host = await lab.netns('host');
    client = await lab.netns('client');
    await lab.veth({ netns: host, name: 'eth0', cidr: '192.0.2.1/24' }, { netns: client, name: 'eth0', cidr: '192.0.2.100/24' });
    servers = new HealthServers(host);
  });

  afterAll(async () => {
    await servers?.close();
    await lab.destroy();
  });

  it('answers 200 with the local task count, 503 without local tasks', async () => {
    const wanted = [
      { serviceId: 'api', serviceName: 'api', port: 31000, localTasks: 2 },
      { serviceId: 'db', serviceName: 'db', port: 31001, localTasks: 0 },
    ];
    expect(await servers.reconcile(wanted)).toBe(2);
    // The same plan again (a resync's check) changes nothing, and says so.
    expect(await servers.reconcile(structuredClone(wanted))).toBe(0);
    expect(await ask(31000)).toEqual({ status: '200', body: '{"service":"api","localTasks":2}' });
    expect(await ask(31001)).toEqual({ status: '503', body: '{"service":"db","localTasks":0}' });
  });

  it('the listener is in the host namespace, not in the one the test runs in', async () => {
    const inHost = await execIn(host, ['ss', '-Hltn', 'sport = :31000']);
    expect(inHost.stdout).toContain('0.0.0.0:31000');
    // The port is free here: binding it in this process's own namespace succeeds.
    const fd = listenTcpInNetns(null, '127.0.0.1', 31000);
    expect(fd).toBeGreaterThan(2);
    closeSync(fd);
  });

  it('updates counts without restarting the server', async () => {
    const before = await execIn(host, ['ss', '-Hltne', 'sport = :31001']);
    const changes = await servers.reconcile([
      { serviceId: 'api', serviceName: 'api', port: 31000, localTasks: 0 },
      { serviceId: 'db', serviceName: 'db', port: 31001, localTasks: 1 },
    ]);
    expect(changes).toBe(2);
    expect((await ask(31000)).status).toBe('503');
    expect(await ask(31001)).toEqual({ status: '200', body: '{"service":"db","localTasks":1}' });
    const after = await execIn(host, ['ss', '-Hltne', 'sport = :31001']);
    // Same listening socket (same inode) before and after.
    const inode = (s: string): string | undefined => /ino:(\d+)/.exec(s)?.[1];
    expect(inode(before.stdout)).toMatch(/^\d+$/);
    expect(inode(after.stdout)).toBe(inode(before.stdout));
  });

  it('a port in use in the host namespace is refused with a typed error, without stopping the other ports', async () => {
    expect(() => listenTcpInNetns(host, '0.0.0.0', 31000)).toThrow(ListenFailedError);
    expect(() => listenTcpInNetns(host, '0.0.0.0', 31000)).toThrow(/already in use/);
    const squatter = listenTcpInNetns(host, '0.0.0.0', 31002);
    try {
      await expect(
        servers.reconcile([
          { serviceId: 'api', serviceName: 'api', port: 31000, localTasks: 0 },
          { serviceId: 'db', serviceName: 'db', port: 31001, localTasks: 1 },
          { serviceId: 'cache', serviceName: 'cache', port: 31002, localTasks: 1 },
          { serviceId: 'queue', serviceName: 'queue', port: 31003, localTasks: 1 },
        ]),
      ).rejects.toThrow(/31002.*already in use/);
      expect(servers.ports()).toEqual([31000, 31001, 31003]);
      expect((await ask(31003)).status).toBe('200');
    } finally {
      closeSync(squatter);
    }
  });

  it('closes a connection that trickles its request, and caps the open connections', async () => {
    const limited = new HealthServers(host, '0.0.0.0', { maxConnections: 2, requestTimeoutMs: 500 });
    try {
      await limited.reconcile([{ serviceId: 'lim', serviceName: 'lim', port: 31010, localTasks: 1 }]);
      // Half a request, then silence: the server hangs up at the request deadline (socat ends on its own),
      // long before `timeout` would end the client (exit 124).
      const slow = await execIn(client, ['timeout', '4', 'socat', '-t0.2', 'SYSTEM:printf "GET /healthz HTTP/1.1\\r\\n"; sleep 10', 'TCP:192.0.2.1:31010'], { allowFailure: true });
      expect(slow.code, slow.stderr).not.toBe(124);
      expect(slow.stderr).not.toMatch(/refused/i);
      // Two idle connections fill the cap: a third is closed without an answer, and served again once they go.
      const idle = [0, 1].map(() => spawnIn(client, ['sh', '-c', 'sleep 3 | socat -T4 - TCP:192.0.2.1:31010'], { stdio: 'ignore' }));
      await new Promise((r) => setTimeout(r, 300)); // socat connects at once; nothing to wait on from outside
      const capped = await execIn(client, ['curl', '-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', 'http://192.0.2.1:31010/'], { allowFailure: true });
      expect(capped.stdout).not.toBe('200');
      for (const p of idle) p.kill('SIGKILL');
      let after = '';
      for (let i = 0; i < 30 && after !== '200'; i++) {
        after = (await execIn(client, ['curl', '-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', 'http://192.0.2.1:31010/'], { allowFailure: true })).stdout;
        if (after !== '200') await new Promise((r) => setTimeout(r, 100));
      }
      expect(after).toBe('200');
    } finally {
      await limited.close();
    }
  });

  it('removing a service closes its port; closing all frees every port', async () => {
    await servers.reconcile([{ serviceId: 'db', serviceName: 'db', port: 31001, localTasks: 1 }]);
    expect(servers.ports()).toEqual([31001]);
    expect((await ask(31000)).status).toMatch(/^curl exit/);
    await servers.close();
    expect(servers.ports()).toEqual([]);
    expect((await ask(31001)).status).toMatch(/^curl exit/);
  });
});
