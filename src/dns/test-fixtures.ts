import dnsPacket from 'dns-packet';
import type { NameView } from './name-view.js';
import { buildNameView } from './name-view.js';

/**
 * Shared by the unit tests: a task on `front` and `back` with `web` (VIP, 3 tasks, port 80
 * published as 8080) and `db` (dnsrr, 2 tasks), plus a service on a network the task is not on.
 */
export function sampleView(): NameView {
  return buildNameView({
    taskNetworks: ['front', 'back'],
    services: [
      {
        name: 'web',
        aliases: ['www'],
        endpointMode: 'vip',
        attachments: [{ network: 'front', vip: '10.0.1.2' }, { network: 'back', vip: '10.0.2.2' }],
        ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }],
      },
      { name: 'db', endpointMode: 'dnsrr', attachments: [{ network: 'back' }] },
      { name: 'secret', endpointMode: 'vip', attachments: [{ network: 'hidden', vip: '10.0.9.2' }] },
    ],
    tasks: [
      { name: 'web.1.aaa', service: 'web', running: true, ips: [{ network: 'front', ip: '10.0.1.3' }, { network: 'back', ip: '10.0.2.3' }] },
      { name: 'web.2.bbb', service: 'web', running: true, ips: [{ network: 'front', ip: '10.0.1.4' }, { network: 'back', ip: '10.0.2.4' }] },
      { name: 'web.3.ccc', service: 'web', running: true, aliases: ['canary'], ips: [{ network: 'front', ip: '10.0.1.5' }] },
      { name: 'web.4.ddd', service: 'web', running: false, ips: [{ network: 'front', ip: '10.0.1.6' }] },
      { name: 'db.1.eee', service: 'db', running: true, ips: [{ network: 'back', ip: '10.0.2.10' }] },
      { name: 'db.2.fff', service: 'db', running: true, ips: [{ network: 'back', ip: '10.0.2.11' }] },
      { name: 'secret.1.ggg', service: 'secret', running: true, ips: [{ network: 'hidden', ip: '10.0.9.3' }] },
    ],
  });
}

/** A query as a stub resolver sends it (RD set), optionally with an EDNS0 OPT record. */
export function queryWire(name: string, type: dnsPacket.RecordType, opts: { id?: number; edns?: number } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: opts.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, flags: 0 } as dnsPacket.Answer] : [],
  });
}

/** A decoded message with the fields the tests read (the dns-packet typings omit rcode, ttl and data). */
export interface LoosePacket {
  id: number;
  flags: number;
  rcode: string;
  questions: { name: string; type: string; class: string }[];
  answers: { name: string; type: string; ttl: number; data: unknown }[];
  additionals: { name: string; type: string; ttl: number; data: unknown }[];
}

/** Decodes a reply with dns-packet's general decoder (independent of our hot-path writer). */
export function decodeLoose(wire: Buffer): LoosePacket {
  const p = dnsPacket.decode(wire) as unknown as Partial<LoosePacket>;
  return { id: p.id ?? -1, flags: p.flags ?? 0, rcode: p.rcode ?? '', questions: p.questions ?? [], answers: p.answers ?? [], additionals: p.additionals ?? [] };
}
