import { hostname } from 'node:os';

/** Who answers: the task and node names a demo app puts in every reply. */
export interface AppIdentity {
  task: string;
  node: string;
}

/** Reads the task's name (MESHNET_TASK_NAME, else MESHNET_TASK_ID) and node (MESHNET_NODE, else the hostname). */
export function appIdentity(env: NodeJS.ProcessEnv): AppIdentity {
  return {
    task: env.MESHNET_TASK_NAME || env.MESHNET_TASK_ID || 'unknown-task',
    node: env.MESHNET_NODE || hostname(),
  };
}

/** Listening options of a demo app. */
export interface AppArgs {
  port: number;
  host: string;
}

/** Parses `--port N [--host ADDR]`; throws a message that says what is accepted. */
export function parseAppArgs(argv: readonly string[], defaultPort: number): AppArgs {
  const args: AppArgs = { port: defaultPort, host: '0.0.0.0' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--port' && value !== undefined) {
      if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65_535) {
        throw new Error(`--port must be 1-65535, got ${JSON.stringify(value)}`);
      }
      args.port = Number(value);
      i++;
    } else if (flag === '--host' && value !== undefined) {
      args.host = value;
      i++;
    } else {
      throw new Error(`unknown argument ${JSON.stringify(flag)}: usage: --port <1-65535> [--host <address>]`);
    }
  }
  return args;
}

/** The client address as people write it: IPv4-mapped IPv6 addresses lose their ::ffff: prefix. */
export function plainAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** The reply line: `web.2 on host-b (client 10.255.0.2)`. */
export function replyLine(id: AppIdentity, client: string): string {
  return `${id.task} on ${id.node} (client ${client})`;
}

/** One structured log line on stdout. */
export function logJson(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...fields })}\n`);
}
