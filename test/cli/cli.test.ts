import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CLI_PATH } from '../../src/lab/cluster-lab.js';
import { NetnsDir } from '../../src/sandbox/netns.js';
import { SqliteKvStore } from '../../src/store/sqlite-store.js';
import { Cluster, type NodeRegistration } from '../../src/model/cluster.js';

// The CLI as a person meets it: help, validation at the edge, errors that say what to do, exit codes.

let dir: string;
let store: string;
const netns = new NetnsDir(`/run/meshnet-cli-test-${randomBytes(4).toString('hex')}/netns`);

function canStat(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function meshnet(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, '--store', store, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-cli-'));
  store = `sqlite:${dir}/state.db`;
});
afterAll(() => {
  netns.removeAll();
  // removeAll takes the netns folder; its parent is this test's own too.
  rmSync(dirname(netns.dir), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('meshnet CLI', () => {
  it('prints help listing the commands, exit 0', () => {
    const r = meshnet('--help');
    expect(r.code).toBe(0);
    for (const c of ['agent', 'node', 'network', 'service', 'task']) expect(r.out).toContain(c);
    const svc = meshnet('service', 'create', '--help');
    expect(svc.code).toBe(0);
    expect(svc.out).toMatch(/--publish <spec>[\s\S]*mode=ingress\|host/);
  });

  it('refuses an unknown command or a missing required option with exit 2', () => {
    expect(meshnet('frobnicate').code).toBe(2);
    const r = meshnet('service', 'create', '--', 'true');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--name/);
  });

  it('rejects a bad --publish with the accepted forms, exit 2', () => {
    const r = meshnet('service', 'create', '--name', 'web', '-p', '80:http', '--', 'true');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/invalid --publish "80:http".*Use \[mode=ingress\|host,\]/);
  });

  it('rejects a bad subnet and an unknown network, naming them', () => {
    const bad = meshnet('network', 'create', 'n1', '--subnet', '10.0.0.0/33');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/subnet/);
    const missing = meshnet('service', 'create', '--name', 'web', '--network', 'nope', '-d', '--', 'true');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/nope/);
  });

  it('creates and lists networks and services; --json is machine-readable', () => {
    expect(meshnet('network', 'create', 'appnet', '--subnet', '10.0.9.0/24').code).toBe(0);
    const dup = meshnet('network', 'create', 'appnet');
    expect(dup.code).toBe(2);
    expect(dup.err).toMatch(/appnet/);
    const ls = meshnet('network', 'ls');
    expect(ls.out).toMatch(/^NAME\s+DRIVER\s+SUBNET/);
    expect(ls.out).toMatch(/appnet\s+overlay\s+10\.0\.9\.0\/24\s+10\.0\.9\.1\s+4096/);
    const created = meshnet('service', 'create', '--name', 'web', '--replicas', '2', '--network', 'appnet', '-p', '8000:80', '-d', '--', 'sleep', '1000');
    expect(created.code, created.err).toBe(0);
    expect(created.out).toMatch(/service web created, published \*:8000->80\/tcp, VIPs appnet=10\.0\.9\.\d+ ingress=10\.255\.\d+\.\d+/);
    const json = JSON.parse(meshnet('service', 'ls', '--json').out) as { name: string; replicas: number }[];
    expect(json.map((s) => [s.name, s.replicas])).toEqual([['web', 2]]);
  });

  it('refuses a published port that is taken, and a dnsrr service in ingress mode', () => {
    const taken = meshnet('service', 'create', '--name', 'other', '-p', '8000:81', '-d', '--', 'true');
    expect(taken.code).toBe(2);
    expect(taken.err).toMatch(/8000/);
    const dnsrr = meshnet('service', 'create', '--name', 'rr', '--endpoint-mode', 'dnsrr', '-p', '8001:80', '-d', '--', 'true');
    expect(dnsrr.code).toBe(2);
    expect(dnsrr.err).toMatch(/dnsrr/);
  });

  it('times out with exit 3 when no agent runs the tasks, saying what to check', () => {
    const r = meshnet('service', 'scale', 'web=3', '--timeout', '1');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/did not converge within 1s.*meshnet node ls/);
  });

  it('answers inspect of a missing service with exit 2 and removes services', () => {
    const r = meshnet('service', 'inspect', 'ghost');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no service named ghost/);
    expect(meshnet('service', 'rm', 'web').code).toBe(0);
    expect(meshnet('network', 'rm', 'appnet').code).toBe(0);
  });

  it('validates agent options before touching anything', () => {
    const r = meshnet('agent', '--name', 'h1', '--advertise-addr', 'not-an-ip');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--advertise-addr: "not-an-ip" is not an IPv4 or IPv6 address/);
  });

  it('refuses names that are not DNS labels, stating the rule, exit 2', () => {
    for (const name of ['my_app', 'web.v2', 'web-', 'a..b', 'AppNet']) {
      const svc = meshnet('service', 'create', '--name', name, '-d', '--', 'true');
      expect([name, svc.code]).toEqual([name, 2]);
      expect(svc.err).toContain(`invalid service name ${JSON.stringify(name)}: use lowercase letters, digits and "-", 1-63 characters, not starting or ending with "-"`);
      const net = meshnet('network', 'create', name);
      expect([name, net.code]).toEqual([name, 2]);
      expect(net.err).toMatch(/name: must be lowercase letters, digits and "-", 1-40 characters/);
    }
    const long = meshnet('network', 'create', 'n'.repeat(41));
    expect(long.code).toBe(2);
    expect(long.err).toMatch(/1-40 characters/);
    const onLong = meshnet('service', 'create', '--name', 'web', '--network', 'n'.repeat(41), '-d', '--', 'true');
    expect(onLong.code).toBe(2);
    expect(onLong.err).toMatch(/invalid network name "n{41}": use .*1-40 characters/);
    expect(meshnet('service', 'ls', '--json').out).not.toMatch(/my_app|AppNet/);
  });

  it('refuses environment names outside [A-Za-z_][A-Za-z0-9_]*', () => {
    for (const kv of ['A-B=1', '1X=1', '=x']) {
      const r = meshnet('service', 'create', '--name', 'envy', '-e', kv, '-d', '--', 'true');
      expect([kv, r.code]).toEqual([kv, 2]);
      expect(r.err).toMatch(/invalid --env .*NAME of letters, digits and "_"/);
    }
  });

  it('stores --user, --cap-add and --cap-drop in Docker\'s canonical names and refuses unknown ones', () => {
    const created = meshnet('service', 'create', '--name', 'priv', '--user', 'nobody:nogroup', '--cap-drop', 'ALL', '--cap-add', 'cap_net_bind_service', '--replicas', '0', '-d', '--', 'true');
    expect(created.code, created.err).toBe(0);
    const rec = JSON.parse(meshnet('service', 'inspect', 'priv', '--json').out) as { user: string; capAdd: string[]; capDrop: string[] };
    expect(rec).toMatchObject({ user: 'nobody:nogroup', capAdd: ['NET_BIND_SERVICE'], capDrop: ['ALL'] });
    // An update keeps them.
    expect(meshnet('service', 'update', 'priv', '--env-add', 'A=1', '-d').code).toBe(0);
    expect(JSON.parse(meshnet('service', 'inspect', 'priv', '--json').out)).toMatchObject({ user: 'nobody:nogroup', capAdd: ['NET_BIND_SERVICE'], capDrop: ['ALL'] });
    const badCap = meshnet('service', 'create', '--name', 'priv2', '--cap-add', 'NET_BIND', '-d', '--', 'true');
    expect(badCap.code).toBe(2);
    expect(badCap.err).toMatch(/invalid --cap-add "NET_BIND": use a Linux capability/);
    const badUser = meshnet('service', 'create', '--name', 'priv2', '--user', 'root;reboot', '-d', '--', 'true');
    expect(badUser.code).toBe(2);
    expect(badUser.err).toMatch(/invalid --user "root;reboot": use UID, NAME, UID:GID or NAME:GROUP/);
    expect(meshnet('service', 'rm', 'priv').code).toBe(0);
  });

  it('task attach --netns takes only a network namespace that is not the host\'s, judged by device and inode', () => {
    const ns = netns.create('extra');
    const notNs = `${dir}/net`;
    writeFileSync(notNs, '');
    const cases: [string, RegExp][] = [
      [notNs, /not a namespace file \(not on the nsfs filesystem\)/],
      ['/proc/self/ns/net', /host's own network namespace/],
      [`${netns.dir}/../../../proc/self/ns/net`, /host's own network namespace/],
      ['/proc/self/ns/mnt', /another kind, not a network namespace/],
      // init's namespace is the host's; where this runs without ptrace rights over pid 1 it cannot even be read
      ['/proc/1/ns/net', canStat('/proc/1/ns/net') ? /host's own network namespace/ : /cannot be read \(EACCES\)/],
      [`${dir}/absent`, /cannot be read \(ENOENT\)/],
      ['relative/ns', /must be an absolute path/],
    ];
    for (const [path, message] of cases) {
      const r = meshnet('task', 'attach', '--service', 'web', '--node', 'host-a', '--netns', path);
      expect([path, r.code, r.err]).toEqual([path, 2, r.err]);
      expect(r.err).toMatch(message);
    }
    // A real foreign namespace passes the check: what stops it here is the missing node, not the path.
    expect(statSync(ns).ino).toBeGreaterThan(0);
    const ok = meshnet('task', 'attach', '--service', 'web', '--node', 'host-a', '--netns', ns);
    expect(ok.err).not.toMatch(/--netns/);
    expect(ok.err).toMatch(/service "web" does not exist/);
    const badNode = meshnet('task', 'attach', '--service', 'web', '--node', 'Host_A', '--netns', ns);
    expect(badNode.code).toBe(2);
    expect(badNode.err).toMatch(/invalid node name "Host_A"/);
  });
});

describe('meshnet CLI store options', () => {
  it('refuses a non-loopback etcd without TLS client certificates before connecting, naming what to give, exit 2', () => {
    const r = meshnet('--store', 'etcd://10.1.0.5:2379', 'node', 'ls');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/etcd at 10\.1\.0\.5:2379 is not on loopback.*--etcd-cacert FILE \(env MESHNET_ETCD_CA\).*--insecure-store/);
  });

  it('refuses a password in argv and says how to give it, exit 2', () => {
    for (const args of [['--etcd-user', 'mesh:s3cret'], ['--etcd-user', 'mesh', '--etcd-password', 's3cret']]) {
      const r = meshnet(...args, 'node', 'ls');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/\/proc\/PID\/cmdline.*--etcd-password-file PATH.*MESHNET_ETCD_PASSWORD/);
    }
  });

  it('lists the store security options in --help, and not the refused --etcd-password', () => {
    const help = meshnet('--help').out;
    for (const o of ['--etcd-cacert', '--etcd-cert', '--etcd-key', '--etcd-user <name>', '--etcd-password-file', '--insecure-store']) expect(help).toContain(o);
    expect(help).not.toMatch(/--etcd-password </);
  });

  it('keeps the embedded store private: state.db, -wal and -shm 0600 in a 0700 directory it makes', async () => {
    const path = `${dir}/fresh/meshnet/state.db`;
    const r = spawnSync(process.execPath, [CLI_PATH, '--store', `sqlite:${path}`, 'network', 'ls'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const mode = (p: string): number => statSync(p).mode & 0o777;
    expect([mode(`${dir}/fresh`), mode(`${dir}/fresh/meshnet`), mode(path)]).toEqual([0o700, 0o700, 0o600]);
    // Made by an older meshnet with the umask's 0644: tightened on open.
    chmodSync(path, 0o644);
    const store = new SqliteKvStore(path);
    try {
      await store.put('/probe', 'x');
      expect([mode(path), mode(`${path}-wal`), mode(`${path}-shm`)]).toEqual([0o600, 0o600, 0o600]);
    } finally {
      await store.close();
    }
  });
});

describe('meshnet node', () => {
  let db: SqliteKvStore;
  let cluster: Cluster;
  let live: NodeRegistration;

  beforeAll(async () => {
    db = new SqliteKvStore(store.slice('sqlite:'.length), { pollIntervalMs: 10, leaseSweepIntervalMs: 50 });
    cluster = new Cluster(db);
    live = await cluster.registerNode({ id: 'host-a', name: 'host-a', underlayIp: '192.0.2.1' }, { ttlSeconds: 30 });
    const dying = await cluster.registerNode({ id: 'host-b', name: 'host-b', underlayIp: '192.0.2.2' }, { ttlSeconds: 0.5 });
    dying.stop();
    const deadline = Date.now() + 10_000;
    while ((await cluster.getNode('host-b')) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // What host-a's agent would publish: its backend kind and a conflict it could not resolve.
    const status = { node: 'host-a', lbBackend: 'nftables', updatedAt: new Date().toISOString(), services: {}, conflicts: ['published port 8000/tcp is held by a program on this host'] };
    await db.put('/meshnet/node-status/host-a', JSON.stringify(status), { lease: live.lease() });
  });

  afterAll(async () => {
    live?.stop();
    await db?.close();
  });

  it('ls keeps a dead node, as down, beside the live one', () => {
    const r = meshnet('node', 'ls');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+STATUS\s+AVAILABILITY\s+ADDRESS\s+LB BACKEND\s+RUNNING TASKS$/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^host-a\s+ready\s+active\s+192\.0\.2\.1\s+nftables\s+0$/), expect.stringMatching(/^host-b\s+down\s+active\s+192\.0\.2\.2\s+-\s+0$/)]);
  });

  it('update sets availability and labels; ls --json and inspect show them', () => {
    const r = meshnet('node', 'update', 'host-b', '--availability', 'drain', '--label-add', 'zone=west', '--label-add', 'com.example/rack=r1');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/node host-b updated: availability drain, labels zone=west, com\.example\/rack=r1/);
    const ls = JSON.parse(meshnet('node', 'ls', '--json').out) as { id: string; status: string; availability: string; labels: Record<string, string>; lbBackend: string | null }[];
    expect(ls.map((n) => [n.id, n.status, n.availability, n.lbBackend])).toEqual([
      ['host-a', 'ready', 'active', 'nftables'],
      ['host-b', 'down', 'drain', null],
    ]);
    expect(ls[1]!.labels).toEqual({ zone: 'west', 'com.example/rack': 'r1' });
    expect(meshnet('node', 'update', 'host-b', '--label-rm', 'zone').code).toBe(0);
    const text = meshnet('node', 'inspect', 'host-b');
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/STATUS:\s+down\nAVAILABILITY:\s+drain\nADDRESS:\s+192\.0\.2\.2\n[\s\S]*LABELS:\s+com\.example\/rack=r1\n/);
  });

  it('inspect shows what a live node published, conflicts included', () => {
    const text = meshnet('node', 'inspect', 'host-a');
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/STATUS:\s+ready[\s\S]*LB BACKEND:\s+nftables[\s\S]*CONFLICTS:\n\s+published port 8000\/tcp is held/);
    const json = JSON.parse(meshnet('node', 'inspect', 'host-a', '--json').out) as Record<string, unknown>;
    expect(json).toMatchObject({ id: 'host-a', status: 'ready', availability: 'active', address: '192.0.2.1', tasks: [], published: { lbBackend: 'nftables', conflicts: ['published port 8000/tcp is held by a program on this host'] } });
  });

  it('refuses bad input with exit 2, saying what to give', () => {
    const cases: [string[], RegExp][] = [
      [['node', 'update', 'host-b', '--availability', 'off'], /argument 'off' is invalid.*active, pause, drain/],
      [['node', 'update', 'host-b'], /nothing to update: give --availability, --label-add or --label-rm/],
      [['node', 'update', 'host-b', '--label-add', 'bad key=1'], /invalid --label-add "bad key=1": label keys are letters, digits/],
      [['node', 'update', 'host-b', '--label-rm', 'nope'], /node host-b has no label "nope"/],
      [['node', 'update', 'Host_B', '--availability', 'drain'], /invalid node name "Host_B"/],
      [['node', 'update', 'ghost', '--availability', 'drain'], /node "ghost" does not exist; see meshnet node ls/],
      [['node', 'inspect', 'ghost'], /no node named ghost: see meshnet node ls/],
      [['node', 'rm', 'ghost'], /node "ghost" does not exist/],
      [['node', 'rm', 'host-a'], /node "host-a" is live .*give --force/],
    ];
    for (const [args, message] of cases) {
      const r = meshnet(...args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.err).toMatch(message);
    }
  });

  it('rm removes a down node, and a live one only with --force', async () => {
    const down = meshnet('node', 'rm', 'host-b');
    expect(down.code, down.err).toBe(0);
    expect(down.out).toMatch(/node host-b removed: 0 task records removed/);
    expect(meshnet('node', 'ls').out).not.toMatch(/host-b/);
    const forced = meshnet('node', 'rm', '--force', 'host-a');
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toMatch(/node host-a removed while live \(its lease was revoked\)/);
    expect(await cluster.nodeViews()).toEqual([]);
    expect(JSON.parse(meshnet('node', 'ls', '--json').out)).toEqual([]);
  });
});

