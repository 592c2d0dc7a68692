import { z } from 'zod';
import { nameProblem } from '../model/records.js';
import { canonicalUnderlay, underlayAddressProblem } from '../overlay/underlay-address.js';

/** Everything an agent is told at start; validated once at the edge. */
export const AgentConfigSchema = z.strictObject({
  /** Node id and name (unique in the cluster). */
  nodeName: z.string().superRefine((name, ctx) => {
    // One grammar for every name meshnet stores: a node the store would refuse must not start.
    const problem = nameProblem('node', name);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  /** Underlay address other nodes reach this one at (the VTEP): v4, or a v6 unicast for a v6 underlay; kept in canonical text. */
  advertiseAddr: z
    .string()
    .superRefine((ip, ctx) => {
      const problem = underlayAddressProblem(ip);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .transform(canonicalUnderlay),
  /** Store address: sqlite:/path or etcd://host:port[,host:port]. */
  store: z.string().min(1),
  /** Host namespace file; null: the namespace the agent runs in (declared the host by this very setting). */
  hostNetns: z.string().startsWith('/').nullable(),
  netnsDir: z.string().startsWith('/'),
  stateDir: z.string().startsWith('/'),
  lbBackend: z.enum(['auto', 'nftables', 'ipvs']),
  gwbridgeName: z.string().regex(/^[A-Za-z0-9_-]{1,15}$/),
  /** Subnet of the host bridge; omitted: the first free /16 from 172.18.0.0/16 on (chosen at start). */
  gwbridgeSubnet: z.cidrv4().optional(),
  /** Take over a DOCKER-INGRESS chain that holds a Docker Swarm node's rules (refused by default). */
  allowDockerIngressTakeover: z.boolean(),
  /** Seconds a removed task keeps its connections before it is stopped. */
  drainSeconds: z.number().min(0).max(3600),
  /** Seconds between full reconcile passes (they prune what the state no longer wants). */
  resyncSeconds: z.number().min(1).max(3600),
  leaseTtlSeconds: z.number().int().min(2).max(600),
  /** Seconds a started task may take to listen on its ports before it is reported as not listening. */
  readyDeadlineSeconds: z.number().int().min(1).max(3600).default(30),
  /**
   * Milliseconds between echo probes to each peer's VTEP over the ingress overlay; a peer that misses 3
   * in a row has its backends taken out of this node's tables until it answers twice. 0: no probes.
   */
  vtepProbeIntervalMs: z
    .number()
    .int()
    .refine((ms) => ms === 0 || (ms >= 50 && ms <= 60_000), { message: 'give 0 (no probes) or milliseconds from 50 to 60000' })
    .default(400),
  /**
   * Threads answering 127.0.0.11 in task namespaces. Two keep the resolver at 0.75 x dnsmasq's throughput
   * (bench/dns/dnsperf: one reaches 0.67); one costs a V8 isolate (~8 MB of RSS) less, for small nodes.
   */
  dnsWorkers: z.number().int().min(1).max(16).default(2),
  /** Seconds between new keys of the encrypted overlays' keyring (default 12 h). */
  keyRotationSeconds: z.number().int().min(2).max(90 * 86_400).optional(),
  dnsUpstreams: z.array(z.string()).max(3),
  /** Where the agent API listens (IP[:PORT]); default: advertiseAddr:9324 with TLS, none without (unix socket only). */
  apiAddr: z.string().optional(),
  /** The API's TLS material; default: the etcd client certificate, key and CA. */
  apiCert: z.string().startsWith('/').optional(),
  apiKey: z.string().startsWith('/').optional(),
  apiCa: z.string().startsWith('/').optional(),
});

/** A validated agent configuration. */
export type AgentConfig = z.infer<typeof AgentConfigSchema>;
