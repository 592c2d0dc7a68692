import { createSocket } from 'node:dgram';
import { appIdentity, logJson, parseAppArgs, plainAddress } from './app-identity.js';

// UDP counterpart of echo-http: one reply datagram `<task> on <node>` per datagram received.

function main(): void {
  const args = parseAppArgs(process.argv.slice(2), 53);
  const id = appIdentity(process.env);
  const socket = createSocket('udp4');
  const reply = Buffer.from(`${id.task} on ${id.node}\n`);

  socket.on('message', (_msg, rinfo) => {
    socket.send(reply, rinfo.port, rinfo.address);
    logJson({ event: 'datagram', task: id.task, node: id.node, client: plainAddress(rinfo.address), clientPort: rinfo.port, bytes: rinfo.size });
  });
  socket.on('error', (err) => {
    logJson({ event: 'error', task: id.task, error: err.message });
    process.exit(1);
  });
  const stop = (signal: string): void => {
    logJson({ event: 'stopped', task: id.task, signal });
    socket.close(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  socket.bind(args.port, args.host, () => {
    logJson({ event: 'listening', task: id.task, node: id.node, host: args.host, port: args.port, protocol: 'udp' });
  });
}

main();
