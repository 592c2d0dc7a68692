import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH } from '../../src/lab/cluster-lab.js';
import { SqliteKvStore } from '../../src/store/sqlite-store.js';
import { Cluster, type NodeRegistration } from '../../src/model/cluster.js';
import { writeNodeStatus } from '../../src/agent/node-status.js';

// `task logs` and `service logs` as a person meets them without agents: flags checked at the edge
// (exit 2), and a node that advertises no API or an unreachable one named (exit 1).

let dir: string;
let store: string;
let reg: NodeRegistration;
let kv: SqliteKvStore;

function meshnet(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, '--store', store, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-logs-cli-'));
  store = `sqlite:${dir}/state.db`;
  kv = new SqliteKvStore(`${dir}/state.db`);
  const cluster = new Cluster(kv);
  reg = await cluster.registerNode({ id: 'n1', name: 'n1', underlayIp: '192.0.2.1' }, { ttlSeconds: 60 });
  await cluster.createService({ name: 'web', replicas: 2, command: ['sleep', '1000'] });
  await cluster.claimTask('web', 1, 'n1');
  await cluster.claimTask('web', 2, 'n1');
});
afterAll(async () => {
  await reg?.close();
  await kv?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('meshnet task logs / service logs', () => {
  it('lists -f, --tail and the API certificate flags in --help', () => {
    const r = meshnet('service', 'logs', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/-f, --follow[\s\S]*--tail <n>[\s\S]*--api-cert <file>/);
    expect(meshnet('task', 'logs', '--help').out).toMatch(/SERVICE\.SLOT/);
  });

  it('refuses a bad --tail, half a set of --api-* flags, and unknown tasks or services with exit 2', () => {
    const tail = meshnet('task', 'logs', '--tail', 'ten', 'web.1');
    expect(tail.code).toBe(2);
    expect(tail.err).toMatch(/invalid --tail "ten": give a number of lines from 0, or all/);
    const half = meshnet('task', 'logs', '--api-cert', '/x.crt', 'web.1');
    expect(half.code).toBe(2);
    expect(half.err).toMatch(/give --api-cert, --api-key and --api-ca together/);
    expect(meshnet('task', 'logs', 'web.7').code).toBe(2);
    const svc = meshnet('service', 'logs', 'nope');
    expect(svc.code).toBe(2);
    expect(svc.err).toMatch(/no service named nope/);
  });

  it('names the node when it advertises no API, or when its API cannot be reached, exit 1', async () => {
    const none = meshnet('service', 'logs', 'web');
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/web\.1@n1: node n1 advertises no agent API/);
    expect(none.err).toMatch(/web\.2@n1: node n1 advertises no agent API/);
    await writeNodeStatus(kv, { node: 'n1', lbBackend: 'nftables', updatedAt: new Date().toISOString(), services: {}, api: `unix:${dir}/gone.sock` }, reg.lease());
    const gone = meshnet('task', 'logs', 'web.1');
    expect(gone.code).toBe(1);
    expect(gone.err).toMatch(/web\.1@n1: cannot reach the agent API at unix:.*gone\.sock: no socket there/);
    // An https endpoint needs a client certificate; this CLI has none.
    await writeNodeStatus(kv, { node: 'n1', lbBackend: 'nftables', updatedAt: new Date().toISOString(), services: {}, api: 'https://192.0.2.1:9324' }, reg.lease());
    const tls = meshnet('task', 'logs', 'web.1');
    expect(tls.code).toBe(1);
    expect(tls.err).toMatch(/takes only clients with a certificate signed by the cluster CA: give --api-cert/);
  });
});
