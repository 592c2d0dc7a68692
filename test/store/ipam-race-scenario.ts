import { Cluster } from '../../src/model/cluster.js';
import { PortConflictError } from '../../src/model/model-errors.js';
import { openStore } from '../../src/store/open-store.js';

// One allocator of the IPAM race: its own store handle doing what an operator and an agent would do at once —
// create a network, create services (one contesting a fixed published port), claim task slots on the shared network.

/** What one allocator obtained. */
export interface AllocatorResult {
  index: number;
  network: { subnet: string; vni: number };
  vips: Record<string, string>;
  ports: number[];
  taskIps: string[];
  wonContestedPort: boolean;
}

/** Runs allocator `index` against the store at `address`. */
export async function runAllocator(address: string, index: number): Promise<AllocatorResult> {
  const store = await openStore(address, { sqlite: { pollIntervalMs: 50 } });
  try {
    const cluster = new Cluster(store);
    const net = await cluster.createNetwork({ name: `net-${index}` });
    const svc = await cluster.createService({ name: `svc-${index}`, networks: ['shared'], replicas: 3, command: ['x'], ports: [{ target: 80 }] });
    let wonContestedPort = false;
    try {
      await cluster.createService({ name: `contested-${index}`, command: ['x'], ports: [{ published: 9999, target: 80 }] });
      wonContestedPort = true;
    } catch (err) {
      if (!(err instanceof PortConflictError)) throw err;
    }
    const taskIps: string[] = [];
    for (let slot = 1; slot <= 3; slot++) {
      const task = await cluster.claimTask(`svc-${index}`, slot, `node-${index}`);
      taskIps.push(`shared/${task.addresses['shared']!.ip}`, `ingress/${task.addresses['ingress']!.ip}`);
    }
    return {
      index,
      network: { subnet: net.subnet, vni: net.vni },
      vips: svc.vips,
      ports: svc.ports.map((p) => p.published),
      taskIps,
      wonContestedPort,
    };
  } finally {
    await store.close();
  }
}

/** Child-process entry: node ipam-race-scenario.js <address> <first index> <count> → JSON results on stdout. */
async function main(): Promise<void> {
  const [address, first, count] = process.argv.slice(2);
  const results = await Promise.all(Array.from({ length: Number(count) }, (_, i) => runAllocator(address!, Number(first) + i)));
  process.stdout.write(JSON.stringify(results));
}

if (process.argv[1]?.endsWith('ipam-race-scenario.js')) {
  main().catch((err) => {
    process.stderr.write(`${String(err?.stack ?? err)}\n`);
    process.exit(1);
  });
}
