import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A throwaway single-member etcd on 127.0.0.1 with random free ports and a temp data dir, for tests and benches.
// Short heartbeat/election timings make etcd's minimum lease TTL 1 s and leader election near-instant.

/** A free TCP port on 127.0.0.1 (closed again before returning). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no port'));
      server.close(() => resolve(address.port));
    });
  });
}

/** Server TLS material: clients must present a certificate signed by `caFile`. */
export interface EtcdServerTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** A running test etcd. */
export class EtcdTestServer {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly tls: EtcdServerTls | undefined,
  ) {}

  /** Starts etcd (with mutual TLS on the client port when `tls` is given) and waits until it is healthy. */
  static async start(tls?: EtcdServerTls): Promise<EtcdTestServer> {
    // On tmpfs etcd's fsync per write is free, which keeps CAS-heavy tests fast; fall back to the temp dir.
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const server = new EtcdTestServer(mkdtempSync(join(base, 'meshnet-etcd-')), await freePort(), await freePort(), tls);
    await server.launch();
    return server;
  }

  /** host:port of the client endpoint. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  private async launch(): Promise<void> {
    const client = `${this.tls ? 'https' : 'http'}://${this.endpoint}`;
    const tlsArgs = this.tls
      ? ['--cert-file', this.tls.certFile, '--key-file', this.tls.keyFile, '--trusted-ca-file', this.tls.caFile, '--client-cert-auth']
      : [];
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.output = '';
    const child = spawn(
      'etcd',
      [
        '--name', 'meshnet-test',
        '--data-dir', this.dataDir,
        '--listen-client-urls', client,
        '--advertise-client-urls', client,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `meshnet-test=${peer}`,
        '--heartbeat-interval', '10',
        '--election-timeout', '100',
        '--log-level', 'error',
        ...tlsArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child = child;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}: ${this.output}`);
      if (await this.healthy(client)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd did not become healthy within 15 s: ${this.output}`);
  }

  private async healthy(client: string): Promise<boolean> {
    if (this.tls) {
      // fetch cannot present a client certificate; etcdctl can.
      const tls = this.tls;
      return new Promise((resolve) => {
        execFile(
          'etcdctl',
          ['--endpoints', client, '--cacert', tls.caFile, '--cert', tls.certFile, '--key', tls.keyFile, '--command-timeout', '1s', 'endpoint', 'health'],
          (err) => resolve(err === null),
        );
      });
    }
    try {
      const res = await fetch(`${client}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    } catch {
      return false; // not listening yet
    }
  }

  /** Runs etcdctl against this server (plain http only). */
  async etcdctl(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('etcdctl', ['--endpoints', `http://${this.endpoint}`, ...args], (err, stdout, stderr) => {
        if (err) reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`));
        else resolve(stdout);
      });
    });
  }

  /** Kills etcd (SIGKILL) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Freezes etcd (SIGSTOP): connections stay open and nothing answers, as with a hung or partitioned server. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a paused etcd run again (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills etcd and starts it again on the same ports and data. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Kills etcd and removes its data. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
