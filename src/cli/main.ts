import { Command, CommanderError } from 'commander';
import { agentCommand } from './commands/agent-command.js';
import { nodeCommand } from './commands/node-command.js';
import { networkCommand } from './commands/network-command.js';
import { serviceCommand } from './commands/service-command.js';
import { taskCommand } from './commands/task-command.js';
import { CliError, EXIT, type StoreChoice } from './cli-context.js';
import { storeOptionsFrom, type StoreFlags } from './store-flags.js';
import { ModelError } from '../model/model-errors.js';
import { StoreError } from '../store/store-errors.js';
import { PublishFlagError } from './publish-flag.js';

const USAGE_CODES = /^(RECORD_INVALID|INVALID_SPEC|.*_NOT_FOUND|.*_EXISTS|SUBNET_OVERLAP|PORT_CONFLICT|NETWORK_IN_USE)$/;

const program = new Command('meshnet')
  .description('an ingress routing mesh for Linux hosts: overlay networks, service VIPs, published ports on every host, DNS on 127.0.0.11')
  .option('--store <address>', 'cluster store: sqlite:/path or etcd://host:port[,host:port] (env MESHNET_STORE; default sqlite:/var/lib/meshnet/state.db)')
  .option('--etcd-cacert <file>', 'CA certificate of etcd (env MESHNET_ETCD_CACERT); turns on TLS')
  .option('--etcd-cert <file>', 'client certificate for etcd (env MESHNET_ETCD_CERT)')
  .option('--etcd-key <file>', 'key of the client certificate (env MESHNET_ETCD_KEY)')
  .option('--etcd-user <name:password>', 'etcd credentials (env MESHNET_ETCD_USER)')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

const storeOption = (): StoreChoice => {
  const o = program.opts<{ store?: string } & StoreFlags>();
  return { address: o.store, options: storeOptionsFrom(o) };
};
program.addCommand(agentCommand(storeOption));
program.addCommand(nodeCommand(storeOption));
program.addCommand(networkCommand(storeOption));
program.addCommand(serviceCommand(storeOption));
program.addCommand(taskCommand(storeOption));
for (const c of program.commands) {
  c.exitOverride();
  for (const sub of c.commands) sub.exitOverride();
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (err instanceof CliError) {
    console.error(`meshnet: ${err.message}`);
    process.exitCode = err.exitCode;
  } else if (err instanceof ModelError || err instanceof PublishFlagError) {
    console.error(`meshnet: ${err.message}`);
    // What the user asked for cannot be done as asked (bad input, a name taken or missing): exit 2.
    // Lost races and exhausted pools are run-time failures: exit 1.
    process.exitCode = err instanceof PublishFlagError || USAGE_CODES.test(err.code) ? EXIT.usage : EXIT.failed;
  } else if (err instanceof StoreError) {
    console.error(`meshnet: ${err.message}`);
    process.exitCode = EXIT.failed;
  } else {
    console.error(`meshnet: ${(err as Error).message ?? String(err)}`);
    process.exitCode = EXIT.failed;
  }
}
