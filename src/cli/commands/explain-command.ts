import { Command } from 'commander';
import type { StoreChoice } from '../cli-context.js';

/** `meshnet explain TARGET [--from ADDR|TASK] [--node NODE] [--size BYTES] [--json]`. */
export function explainCommand(storeOption: () => StoreChoice): Command {
  return new Command('explain')
    .description(
      'show, from the live kernel of each host involved, the hops a new connection takes and where it would stop: ' +
        'HOST:PORT[/udp] [--from ADDR] (a published port), [HOST_V6]:PORT[/udp] [--node NODE] (one on a node\'s v6 address), VIP:PORT[/udp] or [V6VIP]:PORT[/udp] --from TASK (east-west), or SERVICE (every published port on every node). ' +
        'Exit 0: delivered; 1: some connections would stop; 2: bad input',
    )
    .argument('<target>', 'HOST:PORT[/udp], [HOST_V6]:PORT[/udp], VIP:PORT[/udp], [V6VIP]:PORT[/udp] or SERVICE')
    .option('--from <addr|task>', 'the client: its address for a published port (IPv4, or IPv6 for [HOST_V6]:PORT; a host address or loopback: the host itself), a task (web.1 or id) for a VIP')
    .option('--node <node>', 'for [HOST_V6]:PORT: the node holding that v6 address (default: the node whose host has it)')
    .option('--size <bytes>', 'check an IP packet of this size against every MTU on the way')
    .option('--json', 'machine-readable output')
    .action(async (text: string, o: { from?: string; size?: string; node?: string; json?: boolean }) =>
      // Every CLI call builds this command; only explain itself loads what it needs.
      (await import('./explain-action.js')).explainAction(storeOption, text, o),
    );
}
