import { createServer, type Server } from 'node:http';
import type { HealthPortPlan } from './mesh-plan.js';
import { listenTcpInNetns } from './netns-listener.js';

/** Bounds on what one health port accepts. */
export interface HealthServerLimits {
  /** Open connections per port (default 64); more are closed at once. */
  maxConnections?: number;
  /** Time a client has to send its whole request, and an idle socket stays open (default 2000 ms). */
  requestTimeoutMs?: number;
}

/**
 * The health ports of policy=local services (kube-proxy's healthCheckNodePort): an external
 * load balancer asks each node and skips those answering 503, which have no local task and
 * so refuse the published port. Counts change in place; a server starts or stops only when a
 * service's health port appears, moves or goes.
 */
export class HealthServers {
  private readonly servers = new Map<number, { server: Server; entry: HealthPortPlan }>();

  /**
   * @param netns the node's host namespace (null: the one this process runs in)
   * @param address the address to listen on (all of the host's addresses by default)
   */
  constructor(
    private readonly netns: string | null,
    private readonly address = '0.0.0.0',
    private readonly limits: HealthServerLimits = {},
  ) {}

  /**
   * Makes the running servers match `entries` (one per port); resolves once new ones listen.
   * A port that cannot be opened does not stop the others: the first failure is thrown at the end.
   * Returns how many servers it started or stopped, or answer differently now.
   */
  async reconcile(entries: readonly HealthPortPlan[]): Promise<number> {
    const failures: Error[] = [];
    let changes = 0;
    const wanted = new Map(entries.map((e) => [e.port, e]));
    for (const [port, running] of this.servers) {
      if (!wanted.has(port)) {
        this.servers.delete(port);
        await closeServer(running.server);
        changes++;
      }
    }
    for (const entry of wanted.values()) {
      const running = this.servers.get(entry.port);
      if (!running) {
        await this.start(entry).then(() => changes++, (err: Error) => failures.push(err));
      } else if (running.entry.localTasks !== entry.localTasks || running.entry.serviceName !== entry.serviceName || running.entry.serviceId !== entry.serviceId) {
        running.entry = { ...entry };
        changes++;
      }
    }
    if (failures.length > 0) throw failures[0]!;
    return changes;
  }

  /** Ports currently served, ascending. */
  ports(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  /** Stops every server. */
  async close(): Promise<void> {
    await this.reconcile([]);
  }

  private async start(entry: HealthPortPlan): Promise<void> {
    const slot = { server: undefined as unknown as Server, entry: { ...entry } };
    // The port faces the network: a client that trickles its request or holds sockets open must not pin
    // the agent's memory, so every request has a deadline and the open connections a cap.
    const requestTimeout = this.limits.requestTimeoutMs ?? 2000;
    const server = createServer({ requestTimeout, headersTimeout: requestTimeout, connectionsCheckingInterval: Math.min(500, requestTimeout), keepAliveTimeout: 1000 }, (req, res) => {
      const { localTasks, serviceName } = slot.entry;
      const body = `${JSON.stringify({ service: serviceName, localTasks })}\n`;
      res.writeHead(localTasks > 0 ? 200 : 503, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    server.maxConnections = this.limits.maxConnections ?? 64;
    // A socket that says nothing at all gets no longer than a request would.
    server.setTimeout(requestTimeout, (socket) => socket.destroy());
    slot.server = server;
    const fd = listenTcpInNetns(this.netns, this.address, entry.port);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.set(entry.port, slot);
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
