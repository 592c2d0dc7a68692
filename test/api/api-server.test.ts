import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiServer, sendJson } from '../../src/api/api-server.js';
import { ApiClient } from '../../src/api/api-client.js';
import { apiListenPlan } from '../../src/api/api-listen.js';
import { ApiError, ApiUnreachableError } from '../../src/api/api-errors.js';
import { addTaskLogRoutes } from '../../src/api/task-log-routes.js';
import { printTaskLogs, type LogTarget } from '../../src/api/task-log-fetch.js';
import type { ApiTlsSource } from '../../src/api/api-tls.js';
import { silentLogger } from '../../src/log/logger.js';

// The agent API as other nodes and the CLI meet it: a root-only unix socket without TLS material,
// HTTPS that takes only certificates signed by the cluster CA with it, and task logs over either.
// Only loopback and files in a temporary directory are used.

const MAKE_CERTS = fileURLToPath(new URL('../../deploy/etcd/make-certs.sh', import.meta.url));
let dir: string;
const servers: ApiServer[] = [];

function certs(name: string): ApiTlsSource & { dir: string } {
  const out = join(dir, name);
  execFileSync('bash', [MAKE_CERTS, out, 'm1=127.0.0.1'], { stdio: 'ignore' });
  return { dir: out, certFile: join(out, 'client.crt'), keyFile: join(out, 'client.key'), caFile: join(out, 'ca.crt') };
}

async function serve(plan: Parameters<typeof ApiServer.listen>[0]): Promise<ApiServer> {
  const s = await ApiServer.listen(plan, silentLogger());
  servers.push(s);
  s.route('GET', '/v1/echo/:word', (req, res) => sendJson(res, 200, { word: req.params['word'], peer: req.peer }));
  return s;
}

function unixPlan(name: string) {
  const stateDir = join(dir, name);
  mkdirSync(stateDir, { recursive: true });
  return apiListenPlan({ advertiseAddr: '192.0.2.1', stateDir, tls: undefined });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-api-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the agent API on its unix socket', () => {
  it('listens on <state-dir>/api.sock, mode 0600, and answers its routes', async () => {
    const s = await serve(unixPlan('u1'));
    expect(s.endpoint).toBe(`unix:${join(dir, 'u1', 'api.sock')}`);
    expect(statSync(join(dir, 'u1', 'api.sock')).mode & 0o777).toBe(0o600);
    const c = new ApiClient(s.endpoint);
    expect(await c.getJson('/v1/echo/hi%20there')).toEqual({ word: 'hi there', peer: 'unix' });
    const missing = await c.getJson('/v1/nope').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiError);
    expect(missing).toMatchObject({ status: 404, code: 'API_NO_ROUTE' });
    expect(() => s.route('GET', '/v1/echo/:other', () => undefined)).toThrow(/already taken/);
  });

  it('replaces a dead agent\'s socket, refuses a path that is not a socket, and removes its socket on close', async () => {
    const plan = unixPlan('u2');
    // A killed agent leaves its socket file behind: a new one takes the path.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(join(dir, 'u2', 'api.sock'))}, () => process.kill(process.pid, 'SIGKILL'))`], { stdio: 'ignore' });
    expect(statSync(join(dir, 'u2', 'api.sock')).isSocket()).toBe(true);
    const second = await serve(plan);
    await second.close();
    expect(() => statSync(join(dir, 'u2', 'api.sock'))).toThrow();
    writeFileSync(join(dir, 'u2', 'api.sock'), 'not a socket');
    await expect(ApiServer.listen(plan, silentLogger())).rejects.toThrow(/is not a socket: move it away/);
  });

  it('a client of a socket that is not there says to check the agent', async () => {
    const err = await new ApiClient(`unix:${join(dir, 'none', 'api.sock')}`).getJson('/v1/echo/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnreachableError);
    expect((err as Error).message).toMatch(/is the node's agent running/);
  });
});

describe('the agent API over HTTPS with client certificates', () => {
  let cluster: ApiTlsSource;
  let other: ApiTlsSource;
  beforeAll(() => {
    cluster = certs('cluster');
    other = certs('other');
  });

  const httpsPlan = (tls: ApiTlsSource) => ({ kind: 'https' as const, host: '127.0.0.1', port: 0, tls, advertise: 'https://127.0.0.1:0' });

  it('serves with the cluster\'s client certificate and takes a client signed by the cluster CA', async () => {
    const s = await serve(httpsPlan(cluster));
    expect(s.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(await new ApiClient(s.endpoint, { tls: cluster }).getJson('/v1/echo/ok')).toEqual({ word: 'ok', peer: 'cn=meshnet' });
  });

  it('refuses a client without a certificate, with one of another CA, and in plaintext', async () => {
    const s = await serve(httpsPlan(cluster));
    expect(() => new ApiClient(s.endpoint)).toThrow(/certificate signed by the cluster CA: give --api-cert/);
    // Another cluster's client trusting our CA still has a certificate we did not sign.
    const stranger = new ApiClient(s.endpoint, { tls: { ...other, caFile: cluster.caFile! } });
    await expect(stranger.getJson('/v1/echo/x')).rejects.toBeInstanceOf(ApiUnreachableError);
    const port = Number(s.endpoint.split(':').pop());
    const plain = await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/v1/echo/x' }, (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (e) => resolve(`error ${e.message}`));
      req.end();
    });
    expect(plain).not.toMatch(/answered 200/);
  });

  it('a client refuses an agent whose certificate the cluster CA did not sign', async () => {
    const s = await serve(httpsPlan({ ...other, caFile: cluster.caFile! }));
    const err = await new ApiClient(s.endpoint, { tls: cluster }).getJson('/v1/echo/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnreachableError);
    expect((err as Error).message).toMatch(/not signed by the cluster CA/);
  });
});

describe('task logs over the API', () => {
  it('serves a tail, streams a follow until the task ends, and prints TASK@NODE prefixes', async () => {
    const taskDir = join(dir, 'task1');
    mkdirSync(taskDir, { recursive: true });
    const log = join(taskDir, 'stdout.log');
    writeFileSync(`${log}.1`, 'one\ntwo\n');
    writeFileSync(log, 'three\nfour\n');
    let ended = false;
    const s = await serve(unixPlan('logs'));
    addTaskLogRoutes(s, { node: 'host-a', logPath: (id) => (id === 'abc12345' ? log : undefined), ended: () => ended });
    const target: LogTarget = { label: 'web.1@host-a', taskId: 'abc12345', service: 'web', slot: 1, node: 'host-a', endpoint: s.endpoint };
    let out = '';
    const base = { follow: false, signal: new AbortController().signal, format: 'prefixed' as const, write: (t: string) => (out += t) };
    expect(await printTaskLogs([target], { ...base, tail: 3 })).toEqual([]);
    expect(out).toBe('web.1@host-a | two\nweb.1@host-a | three\nweb.1@host-a | four\n');

    out = '';
    const following = printTaskLogs([target], { ...base, follow: true, tail: 1 });
    const deadline = Date.now() + 10_000;
    const until = async (text: string) => {
      while (!out.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    await until('four');
    appendFileSync(log, 'five\n');
    await until('five');
    expect(out).toBe('web.1@host-a | four\nweb.1@host-a | five\n');
    appendFileSync(log, 'last words');
    ended = true;
    expect(await following).toEqual([]);
    expect(out).toBe('web.1@host-a | four\nweb.1@host-a | five\nweb.1@host-a | last words\n');

    const failures = await printTaskLogs([{ ...target, taskId: 'gone1234' }, { ...target, endpoint: undefined }], base);
    expect(failures.map((f) => f.error)).toEqual([expect.stringMatching(/task gone1234 does not run on node host-a/), expect.stringMatching(/advertises no agent API/)]);
    const bad = await new ApiClient(s.endpoint).getJson('/v1/tasks/abc12345/logs?tail=-1').catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400 });
  });

  it('ends a follow when the client aborts, and close() ends the ones still open', async () => {
    const log = join(dir, 'task2.log');
    writeFileSync(log, 'x\n');
    const s = await serve(unixPlan('logs2'));
    addTaskLogRoutes(s, { node: 'host-b', logPath: () => log, ended: () => false });
    const target: LogTarget = { label: 'w.1@host-b', taskId: 'def12345', service: 'w', slot: 1, node: 'host-b', endpoint: s.endpoint };
    const ac = new AbortController();
    let out = '';
    const following = printTaskLogs([target], { follow: true, signal: ac.signal, format: 'raw', write: (t) => (out += t) });
    while (!out.includes('x')) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    expect(await following).toEqual([]);
    expect(out).toBe('x\n');

    const open = printTaskLogs([target], { follow: true, signal: new AbortController().signal, format: 'raw', write: () => undefined });
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await s.close();
    const failures = await open;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(failures[0]?.error).toMatch(/ended early/);
  });
});
