import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { appIdentity, logJson, parseAppArgs, plainAddress, replyLine } from './app-identity.js';

// The demo's service: every reply names the task, its node and the client address it saw,
// so a test can tell which replica answered and whether the client's address survived the mesh.

const FORCED_EXIT_MS = 5_000;

function main(): void {
  const args = parseAppArgs(process.argv.slice(2), 80);
  const id = appIdentity(process.env);
  let draining = false;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const client = plainAddress(req.socket.remoteAddress);
    const wantsJson = (req.headers.accept ?? '').includes('application/json') || (req.url ?? '').includes('format=json');
    const body = wantsJson
      ? `${JSON.stringify({ task: id.task, node: id.node, client })}\n`
      : `${replyLine(id, client)}\n`;
    if (draining) res.setHeader('Connection', 'close');
    res.writeHead(200, { 'Content-Type': wantsJson ? 'application/json' : 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    logJson({ event: 'request', task: id.task, node: id.node, client, clientPort: req.socket.remotePort, method: req.method, url: req.url });
  });
  server.keepAliveTimeout = 5_000;

  server.on('error', (err) => {
    logJson({ event: 'error', task: id.task, error: err.message });
    process.exit(1);
  });

  const drain = (signal: string): void => {
    if (draining) return;
    draining = true;
    logJson({ event: 'draining', task: id.task, signal });
    // Stop accepting; in-flight requests finish, idle keep-alive connections close now.
    server.close(() => {
      logJson({ event: 'stopped', task: id.task });
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), FORCED_EXIT_MS).unref();
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));

  server.listen(args.port, args.host, () => {
    logJson({ event: 'listening', task: id.task, node: id.node, host: args.host, port: args.port, protocol: 'tcp' });
  });
}

main();
