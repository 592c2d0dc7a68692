import { Command, Option } from 'commander';
import { LOG_LEVELS, type LogLevel } from '../../log/log-levels.js';
import { ListenAddressError, parseListenAddress } from '../../agent/listen-address.js';
import { meshnetVersion } from '../version.js';
import { AgentConfigSchema } from '../../agent/agent-config.js';
import { UnderlayFamilyError } from '../../overlay/underlay-address.js';
import { defaultStoreAddress } from '../../store/open-store.js';
import { CliError, EXIT, type StoreChoice } from '../cli-context.js';
import { DEFAULT_SANDBOX_DIR } from '../../model/cluster.js';
import type { HealthEndpoint } from '../../agent/health-endpoint.js';

/** `meshnet agent`: runs the per-host agent in the foreground until SIGINT/SIGTERM. */
export function agentCommand(storeOption: () => StoreChoice): Command {
  return new Command('agent')
    .description('run the per-host agent: registers this node and reconciles its kernel state to the cluster')
    .requiredOption('--name <node>', 'this node\'s name (unique in the cluster)')
    .requiredOption('--advertise-addr <ip>', 'underlay address other nodes reach this one at (VXLAN endpoint): IPv4, or a unicast IPv6 for a v6 underlay (every node of one family)')
    .option('--host-netns <path|self>', 'host network namespace file; "self" declares the namespace the agent runs in the host', 'self')
    .option('--netns-dir <dir>', 'where task, overlay and ingress_sbox namespaces are bind-mounted', DEFAULT_SANDBOX_DIR)
    .option('--state-dir <dir>', 'runtime state (task logs, pids)', '/run/meshnet')
    .addOption(new Option('--lb-backend <kind>', 'kernel load balancer').choices(['auto', 'nftables', 'ipvs']).default('auto'))
    .option('--gwbridge-name <name>', 'host bridge for the ingress sandbox and task egress (Docker: docker_gwbridge; at most 15 characters)', 'meshnet_gwbr')
    .option('--gwbridge-subnet <cidr>', 'subnet of the host bridge (default: the first /16 from 172.18.0.0/16 on that no route of the host overlaps)')
    .option('--allow-docker-ingress-takeover', 'start even when DOCKER-INGRESS holds a Docker Swarm node\'s rules (meshnet then owns that chain)')
    .option('--drain-seconds <n>', 'seconds a removed task keeps its connections before it stops', '2')
    .option('--resync-seconds <n>', 'seconds between full passes that prune stale kernel state', '30')
    .option('--lease-ttl <seconds>', 'seconds after which a silent node counts as dead', '10')
    .option('--ready-deadline-seconds <n>', 'seconds a started task may take to listen on its target ports before task ls reports it as not listening (it keeps waiting)', '30')
    .option('--vtep-probe-interval-ms <ms>', 'milliseconds between echo probes to each peer over the ingress overlay; a peer that misses 3 in a row leaves this node\'s load-balancing tables until it answers twice (0: no probes, peers are judged by their lease alone)', '400')
    .option('--key-rotation <seconds>', 'seconds between new keys of encrypted networks (Docker: 12 h; the shortest among agents wins)', '43200')
    .option('--dns-workers <n>', 'threads answering 127.0.0.11 in task namespaces (1-16; 1 saves ~8 MB of RSS and a fifth of the peak query rate)', '2')
    .option('--dns-upstream <ip>', 'upstream nameserver for names that are not ours (repeat, at most 3; default: the host\'s)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addOption(new Option('--log-level <level>', 'least severe log lines written (debug explains every pass: one line per changed target)').choices([...LOG_LEVELS]).default('info'))
    .option('--metrics-addr <ip:port|off>', 'where /metrics (Prometheus), /healthz and /readyz listen, in the agent\'s network namespace (Docker\'s metrics port)', '127.0.0.1:9323')
    .option('--api-addr <ip[:port]>', 'where the agent API (task logs) listens over HTTPS with client certificates (default: the advertise address, port 9324; without TLS material only <state-dir>/api.sock)')
    .option('--api-cert <file>', 'certificate the agent API serves with (default: --etcd-cert)')
    .option('--api-key <file>', 'key of --api-cert (default: --etcd-key)')
    .option('--api-ca <file>', 'CA that signs the API clients\' and agents\' certificates (default: --etcd-cacert)')
    .option('--healthz-max-pass-age <seconds>', '/healthz answers 503 when no reconcile pass finished for this long', '60')
    .action(async (o: Record<string, string | string[]>) => {
      // The agent's modules (netlink, libnftables, prom-client, the task runtime) load here, not for every
      // CLI command: they were most of `meshnet --version`'s start-up.
      const [{ limitMallocArenas, trimMallocHeapSoon }, { Agent }, { fanOut }, { AgentHealth }, { HealthEndpoint, HealthEndpointError }, { AgentMetrics }, { SystemdReadiness }, { registerVtepMetrics }] = await Promise.all([
        import('../../agent/glibc-malloc.js'),
        import('../../agent/agent.js'),
        import('../../agent/agent-observer.js'),
        import('../../agent/agent-health.js'),
        import('../../agent/health-endpoint.js'),
        import('../../agent/metrics.js'),
        import('../../agent/systemd-readiness.js'),
        import('../../agent/vtep-metrics.js'),
      ]);
      const { createLogger } = await import('../../log/logger.js');
      const { onNftContextFreed } = await import('../../vip/nft/libnftables.js');
      limitMallocArenas();
      // nft's cache of a table goes back to the kernel once its context is freed, not at the next resync.
      onNftContextFreed(() => trimMallocHeapSoon());
      const log = createLogger({ level: o['logLevel'] as LogLevel });
      // Read once and taken out of the environment: task processes must not inherit systemd's socket.
      const notifySocket = process.env['NOTIFY_SOCKET'];
      delete process.env['NOTIFY_SOCKET'];
      let metricsAddr;
      try {
        metricsAddr = parseListenAddress(String(o['metricsAddr']));
      } catch (err) {
        if (err instanceof ListenAddressError) throw new CliError(err.message, EXIT.usage);
        throw err;
      }
      const maxPassAge = Number(o['healthzMaxPassAge']);
      if (!Number.isFinite(maxPassAge) || maxPassAge < 1 || maxPassAge > 86_400) throw new CliError(`invalid --healthz-max-pass-age "${String(o['healthzMaxPassAge'])}": give seconds from 1 to 86400`, EXIT.usage);
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
        readyDeadlineSeconds: Number(o['readyDeadlineSeconds']),
        leaseTtlSeconds: Number(o['leaseTtl']),
        keyRotationSeconds: Number(o['keyRotation']),
        vtepProbeIntervalMs: Number(o['vtepProbeIntervalMs']),
        dnsWorkers: Number(o['dnsWorkers']),
        dnsUpstreams: o['dnsUpstream'],
        ...(['apiAddr', 'apiCert', 'apiKey', 'apiCa'] as const).reduce((acc, k) => (o[k] !== undefined ? { ...acc, [k]: o[k] } : acc), {}),
      });
      if (!parsed.success) {
        throw new CliError(`invalid agent options: ${parsed.error.issues.map((i) => `--${flagOf(String(i.path[0] ?? ''))}: ${i.message}`).join('; ')}`, EXIT.usage);
      }
      const version = meshnetVersion();
      const metrics = new AgentMetrics({ version });
      const health = new AgentHealth(maxPassAge);
      // Up before the agent starts, so /healthz and /readyz answer (503, with why) while it connects.
      let endpoint: HealthEndpoint | null = null;
      if (metricsAddr) {
        try {
          endpoint = await HealthEndpoint.listen(metricsAddr, metrics.registry, health, log.child({ component: 'metrics' }));
        } catch (err) {
          if (err instanceof HealthEndpointError) throw new CliError(err.message, EXIT.failed);
          throw err;
        }
      }
      const systemd = new SystemdReadiness(notifySocket, process.pid, log.child({ component: 'systemd' }));
      const agent = new Agent(parsed.data, storeOption().options, log, fanOut(metrics, health, systemd));
      registerVtepMetrics(metrics.registry, () => agent.vtepPeers());
      try {
        await agent.start();
      } catch (err) {
        // A listening endpoint, the agent API or the resolver workers would keep a process that failed to start
        // alive: stop what started (tasks and kernel state stay, as on any stop).
        await agent.stop().catch(() => undefined);
        await endpoint?.close();
        // A mixed-family underlay is a wrong flag, not a failure: usage exit, as for any bad --advertise-addr.
        if (err instanceof UnderlayFamilyError) throw new CliError(err.message, EXIT.usage);
        throw err;
      }
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log.info({ event: 'agent.stopping', signal: sig });
          agent
            .stop({ deregister: sig === 'SIGINT' })
            .then(() => endpoint?.close())
            .finally(resolve);
          // Worker threads or sockets of adapters must not keep a stopped agent alive.
          setTimeout(() => process.exit(0), 5000).unref();
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      process.exit(0);
    });
}

/** Config keys whose flag is not their kebab-case spelling. */
const FLAG_OF: Record<string, string> = { nodeName: 'name', leaseTtlSeconds: 'lease-ttl', keyRotationSeconds: 'key-rotation', dnsUpstreams: 'dns-upstream' };

/** The command-line flag an agent config key comes from, so an error names what the operator typed. */
export function flagOf(key: string): string {
  return FLAG_OF[key] ?? key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
