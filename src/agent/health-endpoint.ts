import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';
import type { AgentHealth, ProbeVerdict } from './agent-health.js';
import type { ListenAddress } from './listen-address.js';

/** The endpoint could not listen where it was told to. */
export class HealthEndpointError extends Error {
  readonly code = 'METRICS_LISTEN_FAILED';
  constructor(addr: ListenAddress, cause: string) {
    super(`cannot serve /metrics on ${addr.host}:${addr.port}: ${cause}; give another --metrics-addr (or --metrics-addr off)`);
    this.name = 'HealthEndpointError';
  }
}

/**
 * The agent's HTTP endpoint: /metrics (Prometheus text), /healthz and /readyz (JSON). It listens in
 * the network namespace the agent runs in (a lab host's own loopback, or the host's).
 */
export class HealthEndpoint {
  private constructor(
    private readonly server: Server,
    private readonly registry: Registry,
    private readonly health: AgentHealth,
    private readonly log: Logger,
  ) {}

  /** Starts listening; rejects with HealthEndpointError when the address cannot be bound. */
  static async listen(addr: ListenAddress, registry: Registry, health: AgentHealth, log: Logger): Promise<HealthEndpoint> {
    const server = createServer();
    const endpoint = new HealthEndpoint(server, registry, health, log);
    server.on('request', (req, res) => endpoint.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new HealthEndpointError(addr, err.code === 'EADDRINUSE' ? 'the port is in use' : err.message)));
      server.listen(addr.port, addr.host, () => resolve());
    });
    // Later socket errors are logged; they must not end the agent.
    server.on('error', (err) => log.warn({ event: 'metrics.server_error', error: err.message }));
    const bound = server.address() as AddressInfo;
    log.info({ event: 'metrics.listening', address: bound.address, port: bound.port, paths: ['/metrics', '/healthz', '/readyz'] });
    return endpoint;
  }

  /** The address and port bound (the port the kernel chose when 0 was asked). */
  get address(): ListenAddress {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/metrics':
        this.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
          (err: Error) => {
            this.log.warn({ event: 'metrics.collect_failed', error: err.message });
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`);
          },
        );
        return;
      case '/healthz':
        this.answer(res, this.health.liveness());
        return;
      case '/readyz':
        this.answer(res, this.health.readiness());
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('meshnet agent: /metrics, /healthz, /readyz\n');
    }
  }

  private answer(res: ServerResponse, v: ProbeVerdict): void {
    res.writeHead(v.status, { 'content-type': 'application/json' }).end(`${JSON.stringify(v.body)}\n`);
  }

  /** Stops listening and closes open connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
