import { Command } from 'commander';
import { printJson, withCluster } from '../cli-context.js';
import type { StoreChoice } from '../cli-context.js';
import { renderTable } from '../table.js';

/** `meshnet network create|ls|inspect|rm`. */
export function networkCommand(storeOption: () => StoreChoice): Command {
  const net = new Command('network').description('overlay networks');
  net
    .command('create <name>')
    .description('create an overlay network (a /24 from 10.0.0.0/8 unless --subnet is given)')
    .option('--subnet <cidr>', 'IPv4 subnet, e.g. 10.0.7.0/24')
    .option('--ingress', 'make this the ingress network used by published ports')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { subnet?: string; ingress?: boolean; json?: boolean }) =>
      withCluster(storeOption(), async (cluster) => {
        const spec: Parameters<typeof cluster.createNetwork>[0] = { name, ingress: !!o.ingress };
        if (o.subnet) spec.subnet = o.subnet;
        const rec = await cluster.createNetwork(spec);
        if (o.json) printJson(rec);
        else console.log(`network ${rec.name} created: subnet ${rec.subnet}, gateway ${rec.gateway}, VNI ${rec.vni}`);
      }),
    );
  net
    .command('ls')
    .description('list networks')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withCluster(storeOption(), async (cluster) => {
        const nets = await cluster.listNetworks();
        if (o.json) return printJson(nets);
        console.log(renderTable(['NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'VNI', 'INGRESS'], nets.map((n) => [n.name, n.driver, n.subnet, n.gateway, n.vni, n.ingress ? 'yes' : ''])));
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
        printJson({ ...n, services: services.map((s) => ({ name: s.name, vip: s.vips[name] })), tasks: tasks.map((t) => ({ task: `${t.service}.${t.slot}`, node: t.node, ip: t.addresses[name]!.ip, state: t.state })) });
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
