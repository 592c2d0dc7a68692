import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI_PATH } from '../../src/lab/cluster-lab.js';
import { Lab, type LabHost } from '../lab/lab.js';
import { meshnetIn, waitForLine, waitUntil } from './store-lab.js';

// A plaintext etcd on host-a's underlay address (192.0.2.1, not loopback) and meshnet on host-b: refused unless
// --insecure-store is given, and then every CLI command and the agent warn at start. On loopback plaintext stays
// allowed without the flag (a single-host setup).

let lab: Lab;
let etcdHost: LabHost;
let client: LabHost;
const STORE = 'etcd://192.0.2.1:2379';

beforeAll(async () => {
  lab = await Lab.create(2, { tag: 'insecure-store' });
  [etcdHost, client] = [lab.hosts[0]!, lab.hosts[1]!];
  lab.spawn(etcdHost.netns, [
    'etcd', '--name', 'plain', '--data-dir', `${lab.root}/etcd-data`,
    '--listen-client-urls', 'http://192.0.2.1:2379,http://127.0.0.1:2379', '--advertise-client-urls', 'http://192.0.2.1:2379',
    '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
    '--initial-cluster', 'plain=http://127.0.0.1:2380', '--heartbeat-interval', '10', '--election-timeout', '100', '--log-level', 'error',
  ]);
  await waitUntil('etcd healthy', 20_000, () => lab.exec(client.netns, ['etcdctl', '--endpoints', 'http://192.0.2.1:2379', '--command-timeout', '1s', 'endpoint', 'health'], { allowFailure: true }));
});

afterAll(async () => {
  await lab?.destroy();
});

describe('a plaintext etcd off loopback', () => {
  test('is refused without --insecure-store, naming the TLS flags and variables to give (exit 2)', async () => {
    const r = await meshnetIn(lab, client.netns, {}, ['--store', STORE, 'node', 'ls']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/etcd at 192\.0\.2\.1:2379 is not on loopback.*--etcd-cacert FILE \(env MESHNET_ETCD_CA\), --etcd-cert FILE \(env MESHNET_ETCD_CERT\), --etcd-key FILE \(env MESHNET_ETCD_KEY\)/);
    const fromEnv = await meshnetIn(lab, client.netns, { MESHNET_STORE: STORE }, ['network', 'ls']);
    expect(fromEnv.code, fromEnv.stderr).toBe(2);
    expect(fromEnv.stderr).toMatch(/not on loopback/);
  });

  test('is used with --insecure-store or MESHNET_INSECURE_STORE=1, and the command prints a warning first', async () => {
    for (const [env, flags] of [[{}, ['--insecure-store']], [{ MESHNET_INSECURE_STORE: '1' }, []]] as const) {
      const r = await meshnetIn(lab, client.netns, env, ['--store', STORE, ...flags, 'network', 'create', `n${flags.length}`, '--subnet', `10.0.${flags.length + 10}.0/24`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^meshnet: warning: --insecure-store: talking to etcd at 192\.0\.2\.1:2379 in plaintext; .*root on every host/);
    }
    const ls = await meshnetIn(lab, client.netns, { MESHNET_INSECURE_STORE: 'true' }, ['--store', STORE, 'network', 'ls']);
    expect(ls.stdout).toMatch(/n0\s+overlay\s+10\.0\.10\.0\/24[\s\S]*n1\s+overlay\s+10\.0\.11\.0\/24/);
  });

  test('the agent logs the warning as a warn line at start', async () => {
    const agent = lab.spawn(client.netns, [
      process.execPath, CLI_PATH, '--store', STORE, '--insecure-store', 'agent', '--name', client.name, '--advertise-addr', client.underlayIp,
      '--netns-dir', client.dir.dir, '--state-dir', `${lab.root}/${client.name}/state`,
    ]);
    try {
      const log = await waitForLine(agent, /"event":"agent\.started"/, 60_000);
      const lines = log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const warning = lines.find((l) => l['event'] === 'store.insecure');
      expect(warning).toMatchObject({ level: 'warn', component: 'store', endpoints: ['192.0.2.1:2379'], transport: 'plaintext' });
      expect(lines.indexOf(warning!)).toBeLessThan(lines.findIndex((l) => l['event'] === 'agent.started'));
    } finally {
      if (agent.exitCode === null && agent.signalCode === null) {
        const exited = new Promise((r) => agent.once('exit', r));
        agent.kill('SIGTERM');
        await exited;
      }
    }
  });
});

describe('a plaintext etcd on loopback', () => {
  test('needs no flag and prints no warning', async () => {
    const r = await meshnetIn(lab, etcdHost.netns, {}, ['--store', 'etcd://127.0.0.1:2379', 'network', 'ls']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/n0\s+overlay/);
  });
});
