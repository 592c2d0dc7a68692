import { Command, CommanderError, Option } from 'commander';
import { agentCommand } from './commands/agent-command.js';
import { nodeCommand } from './commands/node-command.js';
import { networkCommand } from './commands/network-command.js';
import { serviceCommand } from './commands/service-command.js';
import { taskCommand } from './commands/task-command.js';
import { CliError, EXIT, type StoreChoice } from './cli-context.js';
import { storeOptionsFrom, type StoreFlags } from './store-flags.js';
import { ModelError } from '../model/model-errors.js';
import { ETCD_PASSWORD_ENV, ETCD_SETTINGS, StoreError } from '../store/store-errors.js';
import { defaultStoreAddress, etcdTransport, parseStoreAddress } from '../store/open-store.js';
import { PublishFlagError } from './publish-flag.js';
import { completionCommand } from './completion.js';
import { meshnetVersion } from './version.js';

const USAGE_CODES = /^(RECORD_INVALID|INVALID_SPEC|.*_NOT_FOUND|.*_EXISTS|SUBNET_OVERLAP|PORT_CONFLICT|NETWORK_IN_USE)$/;

const program = new Command('meshnet')
  .description('an ingress routing mesh for Linux hosts: overlay networks, service VIPs, published ports on every host, DNS on 127.0.0.11')
  .option('--store <address>', 'cluster store: sqlite:/path or etcd://host:port[,host:port] (env MESHNET_STORE; default sqlite:/var/lib/meshnet/state.db)')
  .option('--etcd-cacert <file>', `CA certificate of etcd (env ${ETCD_SETTINGS.ca.env}); turns on TLS`)
  .option('--etcd-cert <file>', `client certificate for etcd (env ${ETCD_SETTINGS.cert.env}); required for a non-loopback etcd`)
  .option('--etcd-key <file>', `key of the client certificate (env ${ETCD_SETTINGS.key.env})`)
  .option('--etcd-user <name>', `etcd user (env ${ETCD_SETTINGS.user.env}); the password comes from --etcd-password-file or env ${ETCD_PASSWORD_ENV}`)
  .option('--etcd-password-file <path>', `file holding the etcd password, mode 0600 or 0400, owned by root (env ${ETCD_SETTINGS.passwordFile.env})`)
  .option('--insecure-store', `allow a non-loopback etcd without TLS client certificates (env ${ETCD_SETTINGS.insecure.env}=1); warns at every start`)
  // Accepted only to refuse it with how to give a password instead (argv is world-readable).
  .addOption(new Option('--etcd-password <password>').hideHelp())
  .version(meshnetVersion(), '-V, --version', 'print meshnet\'s version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

// The command being run, so the store warning goes to the agent's log or, for a CLI command, to the terminal.
let running: Command | undefined;
program.hook('preAction', (_program, actionCommand) => {
  running = actionCommand;
});

let chosen: StoreChoice | undefined;
/** The store choice, built once: the password file is read once and the password leaves the environment. */
const storeOption = (): StoreChoice => {
  if (chosen !== undefined) return chosen;
  const o = program.opts<{ store?: string } & StoreFlags>();
  const choice: StoreChoice = { address: o.store, options: storeOptionsFrom(o) };
  // Helpers the agent runs (ip, nft, iptables) inherit its environment; the password has no business there.
  delete process.env[ETCD_PASSWORD_ENV];
  const address = parseStoreAddress(choice.address ?? defaultStoreAddress());
  if (address.kind === 'etcd') {
    // Refuses an insecure etcd before any command starts its work.
    const { warning } = etcdTransport(address.endpoints, choice.options.etcd);
    // The agent logs it through its own logger (openStore is handed the agent's); a command tells the terminal.
    if (warning !== undefined && running?.name() !== 'agent') console.error(`meshnet: warning: ${warning}`);
  }
  chosen = choice;
  return choice;
};
program.addCommand(agentCommand(storeOption));
program.addCommand(nodeCommand(storeOption));
program.addCommand(networkCommand(storeOption));
program.addCommand(serviceCommand(storeOption));
program.addCommand(taskCommand(storeOption));
program.addCommand(completionCommand());
program.addCommand((await import('./commands/explain-command.js')).explainCommand(storeOption));
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
    // An insecure or unreadable store setting is the operator's to fix before anything runs: exit 2.
    process.exitCode = err.code === 'STORE_INSECURE' || err.code === 'STORE_TLS_FILE' ? EXIT.usage : EXIT.failed;
  } else {
    console.error(`meshnet: ${(err as Error).message ?? String(err)}`);
    process.exitCode = EXIT.failed;
  }
}
