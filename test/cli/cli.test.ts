import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH } from '../../src/lab/cluster-lab.js';

// The CLI as a person meets it: help, validation at the edge, errors that say what to do, exit codes.

let dir: string;
let store: string;

function meshnet(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, '--store', store, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshnet-cli-'));
  store = `sqlite:${dir}/state.db`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    expect(r.err).toMatch(/advertiseAddr/);
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
});
