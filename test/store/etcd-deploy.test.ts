import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Lab, type LabHost } from '../lab/lab.js';
import { meshnetIn, waitUntil } from './store-lab.js';

// deploy/ as an operator uses it: make-certs.sh makes the PKI, the etcd.conf.yml template runs one member on host-a
// (192.0.2.1), and meshnet on host-b reaches it with the settings of deploy/default/meshnet. Without a client
// certificate the same etcd refuses the connection.

const deploy = resolve(dirname(fileURLToPath(import.meta.url)), '../../deploy');
const MEMBER_IP = '192.0.2.1';

let lab: Lab;
let etcdHost: LabHost;
let client: LabHost;
let pki: string;

/** KEY=value lines of a systemd EnvironmentFile (comments and blank lines skipped). */
function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/** deploy/default/meshnet with this lab's store address and PKI folder. */
function labEnvironment(): Record<string, string> {
  const env = environmentFile(readFileSync(join(deploy, 'default/meshnet'), 'utf8'));
  for (const [k, v] of Object.entries(env)) env[k] = v.replace('/etc/meshnet/pki', pki);
  return { ...env, MESHNET_STORE: `etcd://${MEMBER_IP}:2379` };
}

beforeAll(async () => {
  lab = await Lab.create(2, { tag: 'etcd-deploy' });
  [etcdHost, client] = [lab.hosts[0]!, lab.hosts[1]!];
  pki = `${lab.root}/pki`;
  execFileSync(join(deploy, 'etcd/make-certs.sh'), [pki, `etcd-a=${MEMBER_IP}`, 'etcd-b=192.0.2.3', 'etcd-c=192.0.2.4,etcd-c.example.net'], { stdio: 'pipe' });
  // The template as README.md renders it for member etcd-a; only the test's paths and a one-member cluster differ.
  const template = readFileSync(join(deploy, 'etcd/etcd.conf.yml'), 'utf8');
  expect(template).toMatch(/^initial-cluster: .*$/m);
  const config = template
    .replaceAll('@MEMBER_NAME@', 'etcd-a')
    .replaceAll('@MEMBER_IP@', MEMBER_IP)
    .replaceAll('/etc/meshnet/pki', pki)
    .replace(/^data-dir: .*$/m, `data-dir: ${lab.root}/etcd-data`)
    .replace(/^initial-cluster: .*$/m, `initial-cluster: etcd-a=https://${MEMBER_IP}:2380`);
  writeFileSync(`${lab.root}/etcd.conf.yml`, config);
  lab.spawn(etcdHost.netns, ['etcd', '--config-file', `${lab.root}/etcd.conf.yml`]);
  const tls = ['--cacert', `${pki}/ca.crt`, '--cert', `${pki}/client.crt`, '--key', `${pki}/client.key`];
  await waitUntil('etcd healthy', 30_000, () =>
    lab.exec(client.netns, ['etcdctl', '--endpoints', `https://${MEMBER_IP}:2379`, ...tls, '--command-timeout', '1s', 'endpoint', 'health'], { allowFailure: true }),
  );
});

afterAll(async () => {
  await lab?.destroy();
});

describe('deploy/etcd/make-certs.sh', () => {
  test('makes a CA, a certificate per member with its SANs, and a client certificate; keys are 0600', () => {
    const text = (file: string): string => execFileSync('openssl', ['x509', '-in', `${pki}/${file}`, '-noout', '-text'], { encoding: 'utf8' });
    expect(text('etcd-a.crt')).toMatch(/DNS:etcd-a, IP Address:192\.0\.2\.1, IP Address:127\.0\.0\.1, DNS:localhost/);
    expect(text('etcd-c.crt')).toMatch(/DNS:etcd-c, IP Address:192\.0\.2\.4, DNS:etcd-c\.example\.net/);
    expect(text('etcd-b.crt')).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text('client.crt')).toMatch(/Subject: CN ?= ?meshnet[\s\S]*TLS Web Client Authentication/);
    expect(text('client.crt')).not.toMatch(/TLS Web Server Authentication/);
    execFileSync('openssl', ['verify', '-CAfile', `${pki}/ca.crt`, ...['etcd-a', 'etcd-b', 'etcd-c', 'client'].map((n) => `${pki}/${n}.crt`)], { stdio: 'pipe' });
    for (const key of ['ca', 'etcd-a', 'etcd-b', 'etcd-c', 'client']) expect(statSync(`${pki}/${key}.key`).mode & 0o777).toBe(0o600);
  });

  test('keeps the CA and existing certificates when run again', () => {
    const before = readFileSync(`${pki}/ca.crt`, 'utf8');
    const out = execFileSync(join(deploy, 'etcd/make-certs.sh'), [pki, `etcd-a=${MEMBER_IP}`], { encoding: 'utf8' });
    expect(out).toMatch(/kept .*ca\.crt[\s\S]*kept .*etcd-a\.crt/);
    expect(readFileSync(`${pki}/ca.crt`, 'utf8')).toBe(before);
  });
});

describe('an etcd member from the example config', () => {
  test('serves meshnet configured by deploy/default/meshnet: reads and writes, no warning', async () => {
    const env = labEnvironment();
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['MESHNET_ETCD_CA', 'MESHNET_ETCD_CERT', 'MESHNET_ETCD_KEY', 'MESHNET_NODE', 'MESHNET_ADVERTISE_ADDR']));
    const created = await meshnetIn(lab, client.netns, env, ['network', 'create', 'tlsnet', '--subnet', '10.0.20.0/24']);
    expect(created.code, created.stderr).toBe(0);
    const ls = await meshnetIn(lab, client.netns, env, ['network', 'ls']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/tlsnet\s+overlay\s+10\.0\.20\.0\/24/);
    expect(ls.stderr).not.toMatch(/meshnet: warning/);
  });

  test('refuses a client without a certificate: meshnet refuses to try, and forced, etcd rejects the handshake', async () => {
    const { MESHNET_ETCD_CERT: _cert, MESHNET_ETCD_KEY: _key, ...caOnly } = labEnvironment();
    const refused = await meshnetIn(lab, client.netns, caOnly, ['network', 'ls']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/missing: --etcd-cert FILE \(env MESHNET_ETCD_CERT\), --etcd-key FILE \(env MESHNET_ETCD_KEY\)/);

    const forced = await meshnetIn(lab, client.netns, { ...caOnly, MESHNET_INSECURE_STORE: '1' }, ['network', 'ls']);
    expect(forced.code).toBe(1);
    expect(forced.stdout).not.toMatch(/tlsnet/);
    expect(forced.stderr).toMatch(/etcd refused meshnet's TLS connection \(alert bad certificate\): it accepts only a client certificate signed by its CA; give --etcd-cert and --etcd-key/);
    const etcdctl = await lab.exec(client.netns, ['etcdctl', '--endpoints', `https://${MEMBER_IP}:2379`, '--cacert', `${pki}/ca.crt`, '--command-timeout', '2s', 'get', '--prefix', '/'], { allowFailure: true });
    expect(etcdctl.code).not.toBe(0);
  });

  test('refuses plaintext: the example member speaks TLS only', async () => {
    const plain = await lab.exec(client.netns, ['etcdctl', '--endpoints', `http://${MEMBER_IP}:2379`, '--command-timeout', '2s', 'get', '--prefix', '/'], { allowFailure: true });
    expect(plain.code).not.toBe(0);
  });
});

describe('deploy/meshnet-agent.service', () => {
  const unit = readFileSync(join(deploy, 'meshnet-agent.service'), 'utf8');

  test('reads /etc/default/meshnet and puts no store setting or secret on the command line', () => {
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/default\/meshnet$/m);
    const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
    expect(execStart).toMatch(/ agent --name \$\{MESHNET_NODE\} --advertise-addr \$\{MESHNET_ADVERTISE_ADDR\}/);
    expect(execStart).not.toMatch(/--etcd|--store|--insecure-store|PASSWORD/);
  });

  const analyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
  test.skipIf(!analyze)('is a unit systemd accepts, every key known', () => {
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(deploy, 'meshnet-agent.service')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown|Failed to parse|ignoring/i);
  });
});
