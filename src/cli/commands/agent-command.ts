import { Command, Option } from 'commander';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../log/logger.js';
import { Agent } from '../../agent/agent.js';
import { AgentConfigSchema } from '../../agent/agent-config.js';
import { defaultStoreAddress } from '../../store/open-store.js';
import { DEFAULT_NETNS_DIR } from '../../sandbox/netns.js';
import { CliError, EXIT, type StoreChoice } from '../cli-context.js';

/** `meshnet agent`: runs the per-host agent in the foreground until SIGINT/SIGTERM. */
export function agentCommand(storeOption: () => StoreChoice): Command {
  return new Command('agent')
    .description('run the per-host agent: registers this node and reconciles its kernel state to the cluster')
    .requiredOption('--name <node>', 'this node\'s name (unique in the cluster)')
    .requiredOption('--advertise-addr <ip>', 'underlay address other nodes reach this one at (VXLAN endpoint)')
    .option('--host-netns <path|self>', 'host network namespace file; "self" declares the namespace the agent runs in the host', 'self')
    .option('--netns-dir <dir>', 'where task, overlay and ingress_sbox namespaces are bind-mounted', DEFAULT_NETNS_DIR)
    .option('--state-dir <dir>', 'runtime state (task logs, pids)', '/run/meshnet')
    .addOption(new Option('--lb-backend <kind>', 'kernel load balancer').choices(['auto', 'nftables', 'ipvs']).default('auto'))
    .option('--gwbridge-name <name>', 'host bridge for the ingress sandbox and task egress (Docker: docker_gwbridge; at most 15 characters)', 'meshnet_gwbr')
    .option('--gwbridge-subnet <cidr>', 'subnet of the host bridge (default: the first /16 from 172.18.0.0/16 on that no route of the host overlaps)')
    .option('--allow-docker-ingress-takeover', 'start even when DOCKER-INGRESS holds a Docker Swarm node\'s rules (meshnet then owns that chain)')
    .option('--drain-seconds <n>', 'seconds a removed task keeps its connections before it stops', '2')
    .option('--resync-seconds <n>', 'seconds between full passes that prune stale kernel state', '30')
    .option('--lease-ttl <seconds>', 'seconds after which a silent node counts as dead', '10')
    .option('--dns-upstream <ip>', 'upstream nameserver for names that are not ours (repeat, at most 3; default: the host\'s)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addOption(new Option('--log-level <level>', 'least severe log lines written (debug explains every pass)').choices([...LOG_LEVELS]).default('info'))
    .action(async (o: Record<string, string | string[]>) => {
      const log = createLogger({ level: o['logLevel'] as LogLevel });
      const parsed = AgentConfigSchema.safeParse({
        nodeName: o['name'],
        advertiseAddr: o['advertiseAddr'],
        store: storeOption().address ?? defaultStoreAddress(),
        hostNetns: o['hostNetns'] === 'self' ? null : o['hostNetns'],
        netnsDir: o['netnsDir'],
        stateDir: o['stateDir'],
        lbBackend: o['lbBackend'],
        gwbridgeName: o['gwbridgeName'],
        ...(o['gwbridgeSubnet'] !== undefined ? { gwbridgeSubnet: o['gwbridgeSubnet'] } : {}),
        allowDockerIngressTakeover: Boolean(o['allowDockerIngressTakeover']),
        drainSeconds: Number(o['drainSeconds']),
        resyncSeconds: Number(o['resyncSeconds']),
        leaseTtlSeconds: Number(o['leaseTtl']),
        dnsUpstreams: o['dnsUpstream'],
      });
      if (!parsed.success) {
        throw new CliError(`invalid agent options: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`, EXIT.usage);
      }
      const agent = new Agent(parsed.data, storeOption().options, log);
      await agent.start();
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log.info({ event: 'agent.stopping', signal: sig });
          agent.stop({ deregister: sig === 'SIGINT' }).finally(resolve);
          // Worker threads or sockets of adapters must not keep a stopped agent alive.
          setTimeout(() => process.exit(0), 5000).unref();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      process.exit(0);
    });
}
