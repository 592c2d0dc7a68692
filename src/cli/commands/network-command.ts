import { Command } from 'commander';
import { printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { renderTable } from '../table.js';
import { parseSubnetFlags } from '../subnet-flags.js';
import { networkOptions } from '../../overlay/encryption-options.js';
import { isEncrypted } from '../../overlay/encryption-plan.js';

const collect = (v: string, acc: string[]) => [...acc, v];

/** `meshnet network create|ls|inspect|rm`. */
export function networkCommand(storeOption: () => StoreChoice): Command {
  const net = new Command('network').description('overlay networks');
  net
    .command('create <name>')
    .description('create an overlay network (a /24 from 10.0.0.0/8 unless --subnet is given)')
    .option('--subnet <cidr>', 'subnet, e.g. 10.0.7.0/24; with --ipv6 also a v6 one, e.g. fd00:7::/64 (repeat)', collect, [] as string[])
    .option('--ipv6', 'dual stack: tasks and VIPs get an IPv6 address too (a ULA /64 unless a v6 subnet is given)')
    .option('--subnet6 <cidr>', 'the IPv6 subnet of a --ipv6 network, e.g. fd00:7::/64')
    .option('--ingress', 'make this the ingress network used by published ports')
    .option('--opt <key[=value]>', 'driver option, as Docker\'s (repeat); --opt encrypted: VXLAN between hosts in IPsec ESP', collect, [] as string[])
    .option('--encrypted', 'the same as --opt encrypted: AES-GCM ESP between every pair of hosts, keys rotated (agent --key-rotation)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { subnet: string[]; subnet6?: string; ipv6?: boolean; ingress?: boolean; opt: string[]; encrypted?: boolean; json?: boolean }) => {
      const subnets = parseSubnetFlags(o);
      const options = networkOptions(o.opt, !!o.encrypted);
      return withCluster(storeOption(), async (cluster) => {
        const spec: Parameters<typeof cluster.createNetwork>[0] = { name, ingress: !!o.ingress, ...subnets, options };
        const rec = await cluster.createNetwork(spec);
        if (o.json) printJson(rec);
        else console.log(`network ${rec.name} created: subnet ${rec.subnet}, gateway ${rec.gateway}, VNI ${rec.vni}${rec.subnet6 ? `, IPv6 ${rec.subnet6} gateway ${rec.gateway6}` : ''}${isEncrypted(rec.options) ? ', encrypted' : ''}`);
      });
    });
  net
    .command('ls')
    .description('list networks')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withCluster(storeOption(), async (cluster) => {
        const nets = await cluster.listNetworks();
        if (o.json) return printJson(nets);
        console.log(renderTable(['NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'VNI', 'INGRESS', 'ENCRYPTED'], nets.map((n) => [n.name, n.driver, n.subnet6 ? `${n.subnet} ${n.subnet6}` : n.subnet, n.gateway, n.vni, n.ingress ? 'yes' : '', isEncrypted(n.options) ? 'yes' : ''])));
      }),
    );
  net
    .command('inspect <name>')
    .description('show a network and the services and tasks on it')
    .action(async (name: string) =>
      withCluster(storeOption(), async (cluster) => {
        const n = await cluster.getNetwork(name);
        if (!n) throw new Error(`no network named ${name}: see meshnet network ls`);
        const services = (await cluster.listServices()).filter((s) => s.vips[name] !== undefined);
        const tasks = (await cluster.listTasks()).filter((t) => t.addresses[name]);
        printJson({ ...n, encrypted: isEncrypted(n.options), services: services.map((s) => ({ name: s.name, vip: s.vips[name] })), tasks: tasks.map((t) => ({ task: `${t.service}.${t.slot}`, node: t.node, ip: t.addresses[name]!.ip, state: t.state })) });
      }),
    );
  net
    .command('rm <name>')
    .description('remove a network (refused while services use it)')
    .action(async (name: string) =>
      withCluster(storeOption(), async (cluster) => {
        await cluster.removeNetwork(name);
        console.log(`network ${name} removed`);
      }),
    );
  return net;
}
